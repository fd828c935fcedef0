// Bag: the ordered, hierarchical container that holds session and avatar data.
//
// Design choices, and why:
// - A Map, never a plain object, holds the keys, so "__proto__", "constructor" and "prototype"
//   are ordinary data and can never reach Object.prototype.
// - `set` stores a copy (plain objects become child Bags, arrays and primitives become frozen
//   JSON values). A Bag therefore always has the shape it will have after a trip through a store,
//   a value read back cannot be mutated behind the Bag's back (which would skip validation and
//   the change hook), and two sessions never share a value.
// - Child Bags made by `set` are owned by their parent: changes bubble up to the root's
//   `onChange`, which is how a Session learns it is dirty.
// - A Bag can keep a journal of the paths (relative to it) that were set or deleted: a store
//   re-applies exactly those paths onto a newer copy of the session when two writers met.
import {
  checkDepth,
  childPath,
  copyJson,
  freezeParsed,
  isPlainObject,
  MAX_DEPTH,
  setOwn,
  type JsonValue,
} from '../core/json'
import type { inspect, InspectOptionsStylized } from 'node:util'
import { custom, render } from '../core/inspect'
import { describe } from '../core/validate'

export type BagValue = JsonValue | Bag

/** What Bag.toJSON() returns: a fresh, mutable plain object. */
export type BagJSON = { [key: string]: JsonValue }

/** How a value of type T reads back from a Bag: plain objects come back as Bags, arrays frozen. */
export type Stored<T> = T extends readonly unknown[] ? Readonly<T> : T extends object ? Bag<T> : T

interface JournalAccess {
  start(bag: Bag): void
  paths(bag: Bag): string[]
  reset(bag: Bag): void
  replace(bag: Bag, paths: readonly string[]): void
}
// Filled by Bag's static block: package-internal access to a Bag's journal.
let journal!: JournalAccess
// Filled by Bag's static block: bagFromParsed (below) reaches the private builder.
let buildParsed: (obj: Record<string, unknown>) => Bag

/** `Shape` only types reads and writes of top-level keys (`Session<Data>`); nothing is checked
 *  at run time beyond JSON. */
// biome-ignore lint/complexity/noBannedTypes: {} is the empty SessionShape: no keys declared
export class Bag<Shape extends object = {}> implements Iterable<[string, BagValue]> {
  readonly #items = new Map<string, BagValue>()
  #parent: Bag | null = null
  /** This Bag's key in its parent (meaningful only while #parent is set). */
  #key = ''
  /** Dotted paths below this Bag set or deleted since the journal was started or reset. */
  #journal: Set<string> | null = null

  static {
    journal = {
      start: (bag) => {
        bag.#journal ??= new Set()
      },
      paths: (bag) => (bag.#journal === null ? [] : [...bag.#journal]),
      reset: (bag) => bag.#journal?.clear(),
      replace: (bag, paths) => {
        bag.#journal = new Set(paths)
      },
    }
    buildParsed = (obj) => Bag.#build(obj, '', new Set(), 0, true)
  }

  /** How deep values may nest below a root Bag; deeper is a RangeError naming the path. */
  static readonly MAX_DEPTH = MAX_DEPTH

  /** Called after every change to this Bag or any Bag below it. */
  onChange: (() => void) | null = null

  /** Build a Bag from a plain object (as made by toJSON): plain objects become nested Bags. */
  static fromJSON(obj: unknown): Bag {
    if (!isPlainObject(obj)) throw new TypeError(`Bag.fromJSON expects a plain object, got ${describe(obj)}`)
    return Bag.#build(obj, '', new Set(), 0)
  }

  /** Number of top-level keys. */
  get size(): number {
    return this.#items.size
  }

  /** The value at a dotted path, or `fallback` when nothing is there. */
  get<K extends keyof Shape & string>(path: K): Stored<Shape[K]> | undefined
  get<K extends keyof Shape & string>(path: K, fallback: Stored<Shape[K]>): Stored<Shape[K]>
  /** `get<T>(path)`: the caller states what is stored there (not checked at run time). */
  get<T = BagValue>(path: string): T | undefined
  get<T>(path: string, fallback: T): T
  get(path: string, fallback?: unknown): unknown {
    const parts = splitPath(path)
    const parent = this.#walk(parts)
    if (parent === null) return fallback
    const key = parts[parts.length - 1]
    return parent.#items.has(key) ? parent.#items.get(key) : fallback
  }

  has(path: string): boolean {
    const parts = splitPath(path)
    const parent = this.#walk(parts)
    return parent !== null && parent.#items.has(parts[parts.length - 1])
  }

  /** Store a copy of `value` at a dotted path, creating intermediate Bags. */
  set<P extends string>(path: P, value: P extends keyof Shape ? Shape[P] | Stored<Shape[P]> : unknown): this
  set(path: string, value: unknown): this {
    const parts = splitPath(path)
    // Check everything before changing anything: a failed set leaves the Bag as it was.
    let existing: Bag = this
    let depth = 0
    for (; depth < parts.length - 1; depth++) {
      const next = existing.#items.get(parts[depth])
      if (next === undefined) break
      if (!(next instanceof Bag)) {
        const blocker = parts.slice(0, depth + 1).join('.')
        throw new TypeError(
          `cannot set ${JSON.stringify(path)}: ${JSON.stringify(blocker)} holds ${describe(next)}, not a Bag`,
        )
      }
      existing = next
    }
    // The value sits as deep as this Bag is below its root, plus the path's segments.
    const level = this.#level() + parts.length
    checkDepth(level, path)
    const stored = Bag.#convert(value, path, new Set(), level)

    let target = existing
    for (; depth < parts.length - 1; depth++) {
      const child = new Bag()
      child.#parent = target
      child.#key = parts[depth]
      target.#items.set(parts[depth], child)
      target = child
    }
    const key = parts[parts.length - 1]
    Bag.#detach(target.#items.get(key))
    if (stored instanceof Bag) {
      stored.#parent = target
      stored.#key = key
    }
    target.#items.set(key, stored)
    target.#changed(key)
    return this
  }

  /** Remove the value at a dotted path; true when something was removed. */
  delete(path: string): boolean {
    const parts = splitPath(path)
    const parent = this.#walk(parts)
    const key = parts[parts.length - 1]
    if (parent === null || !parent.#items.has(key)) return false
    Bag.#detach(parent.#items.get(key))
    parent.#items.delete(key)
    parent.#changed(key)
    return true
  }

  clear(): void {
    if (this.#items.size === 0) return
    const keys = [...this.#items.keys()]
    for (const value of this.#items.values()) Bag.#detach(value)
    this.#items.clear()
    // Journalled key by key, so a concurrent writer's new keys survive a clear() re-applied later.
    for (const key of keys) this.#note(key)
    this.#changed()
  }

  keys(): IterableIterator<string> {
    return this.#items.keys()
  }

  values(): IterableIterator<BagValue> {
    return this.#items.values()
  }

  entries(): IterableIterator<[string, BagValue]> {
    return this.#items.entries()
  }

  [Symbol.iterator](): IterableIterator<[string, BagValue]> {
    return this.#items.entries()
  }

  /** A fresh plain object; nested Bags become nested objects. Note that JSON objects list
   *  integer-like keys ("1", "42") first, so only those keys may come back in another order. */
  toJSON(): BagJSON {
    const out: BagJSON = {}
    for (const [key, value] of this.#items) {
      setOwn(out, key, value instanceof Bag ? value.toJSON() : copyJson(value, key))
    }
    return out
  }

  /** console.log shows the data as a plain tree. */
  [custom](depth: number, options: InspectOptionsStylized, fn: typeof inspect): string {
    return render('Bag', this.toJSON(), depth, options, fn)
  }

  /** The Bag holding the last segment of `parts`, or null when the path runs through a non-Bag. */
  #walk(parts: string[]): Bag | null {
    let bag: Bag = this
    for (let i = 0; i < parts.length - 1; i++) {
      const next = bag.#items.get(parts[i])
      if (!(next instanceof Bag)) return null
      bag = next
    }
    return bag
  }

  /** How many Bags sit above this one (0 for a root). */
  #level(): number {
    let level = 0
    for (let bag = this.#parent; bag !== null; bag = bag.#parent) level++
    return level
  }

  /** After a change of `key` in this Bag (none: already journalled by the caller). */
  #changed(key?: string): void {
    if (key !== undefined) this.#note(key)
    for (let bag: Bag | null = this; bag !== null; bag = bag.#parent) bag.onChange?.()
  }

  /** Journals `key` of this Bag in every ancestor (itself included) that keeps a journal. */
  #note(key: string): void {
    let path = key
    for (let bag: Bag | null = this; bag !== null; bag = bag.#parent) {
      if (bag.#journal !== null) {
        // Moved to the end: re-applying replays the writer's changes in the order they last happened.
        bag.#journal.delete(path)
        bag.#journal.add(path)
      }
      if (bag.#parent !== null) path = `${bag.#key}.${path}`
    }
  }

  /** A Bag removed from its parent stops reporting changes to it. */
  static #detach(value: BagValue | undefined): void {
    if (value instanceof Bag) value.#parent = null
  }

  #clone(): Bag {
    const copy = new Bag()
    for (const [key, value] of this.#items) {
      // JSON values in a Bag are frozen, so the copy may share them.
      const child = value instanceof Bag ? value.#clone() : value
      if (child instanceof Bag) {
        child.#parent = copy
        child.#key = key
      }
      copy.#items.set(key, child)
    }
    return copy
  }

  /** A value as the Bag stores it; `where` names it in error messages. */
  static #convert(value: unknown, where: string, ancestors: Set<object>, level: number, parsed = false): BagValue {
    if (value instanceof Bag) {
      checkDepth(level + value.#height(), where)
      return value.#clone()
    }
    if (isPlainObject(value)) return Bag.#build(value, where, ancestors, level, parsed)
    // Fresh JSON.parse output is a JSON value by construction: frozen in place, not copied.
    return parsed ? (freezeParsed(value, where, level) as BagValue) : copyJson(value, where, true, level)
  }

  /** How many levels the values below this Bag take: 0 when empty, 1 when flat. */
  #height(): number {
    let height = 0
    for (const value of this.#items.values()) {
      height = Math.max(height, 1 + (value instanceof Bag ? value.#height() : jsonHeight(value)))
    }
    return height
  }

  /** `obj`, sitting at `level` (0: the root), becomes a Bag whose values sit at `level + 1`. */
  static #build(
    obj: Record<string, unknown>,
    where: string,
    ancestors: Set<object>,
    level: number,
    parsed = false,
  ): Bag {
    checkDepth(level, where)
    if (ancestors.has(obj)) throw new TypeError(`${where} is a cyclic structure; only JSON values can be stored`)
    ancestors.add(obj)
    const bag = new Bag()
    for (const key of Object.keys(obj)) {
      const at = childPath(where, key)
      checkKey(key, at)
      const value = Bag.#convert(obj[key], at, ancestors, level + 1, parsed)
      if (value instanceof Bag) {
        value.#parent = bag
        value.#key = key
      }
      bag.#items.set(key, value)
    }
    ancestors.delete(obj)
    return bag
  }
}

/** How many levels the values inside a JSON value take: 0 for a primitive or an empty one. */
function jsonHeight(value: BagValue): number {
  if (typeof value !== 'object' || value === null) return 0
  let height = 0
  for (const v of Object.values(value as object)) height = Math.max(height, 1 + jsonHeight(v as BagValue))
  return height
}

/** Internal (not exported from the package): start journalling the paths changed below `bag`. */
export function trackChanges(bag: Bag): void {
  journal.start(bag)
}

/** Internal: the dotted paths set or deleted below `bag` since tracking started or was reset. */
export function changedPaths(bag: Bag): string[] {
  return journal.paths(bag)
}

/** Internal: forget the journalled paths (after a save). */
export function resetChanges(bag: Bag): void {
  journal.reset(bag)
}

/** Internal: `bag` journals exactly `paths` from now on (a rebased copy keeps its writer's changes). */
export function setChangedPaths(bag: Bag, paths: readonly string[]): void {
  journal.replace(bag, paths)
}

/**
 * Internal: makes `to` hold what `from` holds at each of `paths` (a value is copied, a path
 * missing in `from` is deleted in `to`). A path blocked in `to` by a non-Bag value replaces
 * that value: the writer re-applying its change wins for that path.
 */
export function applyPaths(from: Bag, to: Bag, paths: readonly string[]): void {
  for (const path of paths) {
    if (!from.has(path)) {
      to.delete(path)
      continue
    }
    const value = from.get(path)
    try {
      to.set(path, value)
    } catch (err) {
      if (!(err instanceof TypeError)) throw err
      const parts = path.split('.')
      for (let i = 1; i < parts.length; i++) {
        const prefix = parts.slice(0, i).join('.')
        if (!(to.get(prefix) instanceof Bag)) {
          to.delete(prefix)
          break
        }
      }
      to.set(path, value)
    }
  }
}

function splitPath(path: unknown): string[] {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${describe(path)}`)
  const parts = path.split('.')
  if (parts.includes('')) {
    throw new RangeError(`path ${JSON.stringify(path)} has an empty segment; keys are non-empty strings without '.'`)
  }
  return parts
}

/** Object keys that would need to become Bag keys (a Bag key cannot be empty or hold a '.'). */
function checkKey(key: string, at: string): void {
  if (key === '' || key.includes('.')) {
    throw new RangeError(
      `key ${JSON.stringify(key)} at ${JSON.stringify(at)} cannot be a Bag key: keys are non-empty strings without '.'`,
    )
  }
}

/**
 * Internal (not exported from the package): a Bag adopting a plain object fresh from JSON.parse
 * that nobody else holds. Keys and depth are checked as in fromJSON; values are frozen in place
 * instead of validated and copied a second time (stores read every record this way).
 */
export function bagFromParsed(obj: Record<string, unknown>): Bag {
  return buildParsed(obj)
}
