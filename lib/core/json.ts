// JSON values: what may live in a session record. Every record goes through JSON.stringify on
// its way to a store, so anything JSON would silently change (a Date becoming a string, an
// undefined property vanishing, NaN becoming null) is refused up front instead.
import { describe } from './validate'

export type JsonPrimitive = null | boolean | number | string
export type JsonArray = readonly JsonValue[]
export interface JsonObject {
  readonly [key: string]: JsonValue
}
export type JsonValue = JsonPrimitive | JsonArray | JsonObject

/** How deep values may nest (objects and arrays alike), so that copying, freezing and
 *  serialising them stays far from the call stack's limit. */
export const MAX_DEPTH = 32

/** An object literal, JSON.parse result or Object.create(null): not a Date, Map or class instance. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === null || proto === Object.prototype
}

/** Define an own enumerable property. Plain assignment of "__proto__" would change the
 *  object's prototype instead of storing data; defineProperty never does. */
export function setOwn(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

/** Path of a child for error messages: `a.b`, `a[3]`. */
export function childPath(where: string, key: string | number): string {
  if (typeof key === 'number') return `${where}[${key}]`
  return where === '' ? key : `${where}.${key}`
}

/**
 * Validate that `value` is a JSON value and return a deep copy of it (frozen when `freeze`).
 * `where` names the value in error messages; `level` is how deep it already sits (1: a top-level
 * value). Throws TypeError for anything JSON cannot carry exactly, including cycles, and
 * RangeError past MAX_DEPTH levels.
 */
export function copyJson(value: unknown, where: string, freeze = false, level = 1): JsonValue {
  return copy(value, where, freeze, new Set(), level)
}

/** RangeError naming the path where values nest deeper than MAX_DEPTH. */
export function checkDepth(level: number, where: string): void {
  if (level > MAX_DEPTH) {
    throw new RangeError(`${where} nests deeper than ${MAX_DEPTH} levels (the nesting limit of session data)`)
  }
}

function copy(value: unknown, where: string, freeze: boolean, ancestors: Set<object>, level: number): JsonValue {
  checkDepth(level, where)
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      if (!Number.isFinite(value)) throw notJson(where, value)
      return value
    case 'object':
      break
    default:
      throw notJson(where, value)
  }
  if (value === null) return null
  if (ancestors.has(value)) throw new TypeError(`${where} is a cyclic structure; only JSON values can be stored`)
  ancestors.add(value)
  try {
    let out: JsonValue
    if (Array.isArray(value)) {
      const arr: JsonValue[] = []
      if (value.length > 0) checkDepth(level + 1, childPath(where, 0))
      // A hole reads as undefined (which JSON would turn into null), so it is refused like undefined.
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i]
        // A primitive needs no path unless it is refused: skip building one (long tag lists).
        arr.push(isJsonPrimitive(item) ? item : copy(item, childPath(where, i), freeze, ancestors, level + 1))
      }
      out = arr
    } else if (isPlainObject(value)) {
      const obj: Record<string, JsonValue> = {}
      const keys = Object.keys(value)
      if (keys.length > 0) checkDepth(level + 1, childPath(where, keys[0]))
      for (const key of keys) {
        const item = value[key]
        setOwn(obj, key, isJsonPrimitive(item) ? item : copy(item, childPath(where, key), freeze, ancestors, level + 1))
      }
      out = obj
    } else {
      throw notJson(where, value)
    }
    return freeze ? Object.freeze(out) : out
  } finally {
    ancestors.delete(value)
  }
}

function isJsonPrimitive(value: unknown): value is JsonPrimitive {
  return (
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    value === null ||
    (typeof value === 'number' && Number.isFinite(value))
  )
}

function notJson(where: string, value: unknown): TypeError {
  return new TypeError(
    `${where} must be a JSON value (string, finite number, boolean, null, array or plain object), got ${describe(value)}`,
  )
}

/**
 * Freezes a value fresh from JSON.parse in place, deeply, and returns it. Only for JSON.parse
 * output that nobody else holds: it is a JSON value by construction, so the checks and the copy of
 * copyJson would only repeat what the parser guarantees (stores read records this way). The depth
 * limit still holds, so no record can drive the recursion near the stack's limit.
 */
export function freezeParsed<T>(value: T, where = 'value', level = 1): T {
  if (typeof value === 'object' && value !== null) {
    checkDepth(level, where)
    if (Array.isArray(value)) for (let i = 0; i < value.length; i++) freezeParsed(value[i], where, level + 1)
    else for (const child of Object.values(value)) freezeParsed(child, where, level + 1)
    Object.freeze(value)
  }
  return value
}
