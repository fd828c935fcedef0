// The reference model of the store model test: what a SessionStore promises (docs/api/stores.md and
// docs/api/concurrency.md), kept as plain data and advanced by the commands in commands.ts.
//
// A session lives while it was not deleted, revoked or made unreadable (its key rotated away)
// and its idle time is under its ttl. The model follows the stored lastAccess exactly (touches
// are persisted once it is older than min(touchAfter, ttl / 2), or when the record was opened
// with an older key); after an operation whose effect is not known (an injected error, a
// concurrent writer) it re-learns the affected records from a dump, checking them against what
// the operation may have done.
import { isDeepStrictEqual } from 'node:util'

import { SessionError } from '../../../lib/core/errors'
import { Session } from '../../../lib/session/session'
import type { SessionStore } from '../../../lib/stores/store'
import type { Backend, StoreConfig, StoreKind } from './backends'

/** A session's data as Bag.toJSON() gives it. */
export type Data = Record<string, unknown>

/** The paths commands change: two top-level values and two under one nested bag. */
export const PATHS = ['a', 'b', 'n.x', 'n.y'] as const

/** The identities sessions log in as (null: anonymous, never indexed). */
export const IDENTITIES = ['alice', 'bob', 'carol'] as const

export interface MSession {
  /** Creation order in this run: how commands and the trace name a session (#seq). */
  seq: number
  id: string
  identity: string | null
  ttl: number
  createdAt: number
  /** The stored lastAccess. */
  la: number
  data: Data
  /** False once deleted, revoked or unreadable (see `fate`); expiry is computed from `la`. */
  alive: boolean
  fate: 'deleted' | 'revoked' | 'unreadable' | null
  /** Key generation the stored record is sealed under. */
  gen: number
}

/** A copy read earlier and kept (a request still running), with its own unsaved changes. */
export interface MCopy {
  seq: number
  /** Its lastAccess: the read's time, or what its last successful save stored. */
  la: number
  /** Path -> new value (null: deleted). */
  changes: Map<string, number | null>
  /** attachAvatar(new Avatar(login)) since its last save. */
  login: string | undefined
}

/** Live sessions never get closer than this to their expiry when the clock moves (Redis counts
 *  PX in real time; a run takes far less). */
export const SAFETY_MS = 10 * 60_000

export class Model {
  readonly kind: StoreKind
  readonly config: StoreConfig
  readonly instances: number
  readonly start: number
  now: number
  sessions: MSession[] = []
  copies: (MCopy | null)[] = [null, null, null]
  /** The current key generation; `pair`: the store runs with [gen + 1, gen] (rotation under way). */
  gen = 0
  pair = false
  trace: string[] = []

  constructor(kind: StoreKind, config: StoreConfig, instances: number, now: number) {
    this.kind = kind
    this.config = config
    this.instances = instances
    this.start = now
    this.now = now
  }

  /** The generation new writes are sealed under. */
  get primary(): number {
    return this.pair ? this.gen + 1 : this.gen
  }

  live(s: MSession): boolean {
    return s.alive && this.now - s.la < s.ttl
  }

  throttle(s: MSession): number {
    return Math.min(this.config.touchAfter, s.ttl / 2)
  }

  liveOf(identity: string): MSession[] {
    return this.sessions.filter((s) => s.identity === identity && this.live(s))
  }

  /** A session by a generated number: among the live ones when `live` and there are any. */
  pick(n: number, live: boolean, identity?: string | null): MSession | null {
    let pool = this.sessions
    if (identity !== undefined) pool = pool.filter((s) => s.identity === identity)
    if (live) {
      const l = pool.filter((s) => this.live(s))
      if (l.length > 0) pool = l
    }
    return pool.length === 0 ? null : pool[n % pool.length]
  }

  /** `count` sessions from offset `n` of `pool` (the victims of an injected error). */
  some(pool: MSession[], n: number, count: number): MSession[] {
    if (pool.length === 0) return []
    return Array.from({ length: Math.min(count, pool.length) }, (_, i) => pool[(n + i) % pool.length])
  }

  log(line: string, note = ''): void {
    this.trace.push(`[${this.trace.length}] t+${this.now - this.start}ms ${line}${note}`)
  }

  /** Throws the model's complaint with the whole trace of this run. */
  fail(message: string): never {
    throw new Error(`${message}\n--- trace of this run (${this.kind} store) ---\n${this.trace.join('\n')}`)
  }

  /** What a get of `s` must return now, then the touch it persists. */
  expectGet(s: MSession, got: Session | null, where: string): void {
    if (!this.live(s)) {
      if (got !== null) this.fail(`${where}: #${s.seq} (${this.why(s)}) read back`)
      return
    }
    if (got === null) this.fail(`${where}: live session #${s.seq} (${s.identity ?? 'anonymous'}) read as null`)
    this.expectSame(s, got, where)
    if (this.now - s.la > this.throttle(s) || s.gen !== this.primary) {
      s.la = this.now
      s.gen = this.primary
    }
  }

  expectSame(s: MSession, got: Session, where: string): void {
    if (got.id !== s.id) this.fail(`${where}: #${s.seq} read back with another id`)
    const identity = got.avatar.isAnonymous ? null : got.avatar.identity
    if (identity !== s.identity)
      this.fail(`${where}: #${s.seq} reads as ${identity ?? 'anonymous'}, model: ${s.identity ?? 'anonymous'}`)
    const data = pruned(got.data.toJSON())
    if (!isDeepStrictEqual(data, s.data))
      this.fail(`${where}: #${s.seq} data ${JSON.stringify(data)}, model: ${JSON.stringify(s.data)}`)
  }

  why(s: MSession): string {
    return s.fate ?? (this.live(s) ? 'live' : 'expired')
  }
}

/**
 * `data` without empty bags. The model compares values by path: a bag left empty by deletes is
 * kept or dropped depending on whether a save re-applied its changes, and holds nothing either way.
 */
export function pruned(data: Data): Data {
  const out: Data = {}
  for (const [key, value] of Object.entries(data)) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const inner = pruned(value as Data)
      if (Object.keys(inner).length > 0) out[key] = inner
    } else out[key] = value
  }
  return out
}

/** `data` with `changes` applied path by path (a set creates missing bags; a delete of a missing path does nothing). */
export function applyChanges(data: Data, changes: Map<string, number | null>): Data {
  const out = structuredClone(data)
  for (const [path, value] of changes) {
    const parts = path.split('.')
    let bag = out
    let missing = false
    for (const part of parts.slice(0, -1)) {
      if (typeof bag[part] !== 'object' || bag[part] === null) {
        if (value === null) {
          missing = true
          break
        }
        bag[part] = {}
      }
      bag = bag[part] as Data
    }
    if (missing) continue
    const last = parts[parts.length - 1]
    if (value === null) delete bag[last]
    else bag[last] = value
  }
  return pruned(out)
}

/** A failure an operation may report: a SessionError with a code, nothing else. */
export function expectSessionError(m: Model, err: unknown, where: string): void {
  if (!(err instanceof SessionError) || typeof err.code !== 'string') {
    m.fail(
      `${where}: rejected with ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}, not a SessionError`,
    )
  }
}

/** What one session may hold after an operation whose effect is not known. */
export interface Candidate {
  data: Data
  identity: string | null
}

/** The system under test of one run: the backend and the copies its requests keep. */
export class Real {
  readonly backend: Backend
  copies: (Session | null)[] = [null, null, null]

  constructor(backend: Backend) {
    this.backend = backend
  }

  inst(i: number): SessionStore {
    return this.backend.instances[i % this.backend.instances.length]
  }
}

/**
 * Re-learns sessions after an operation whose effect is not known. During a rotation, a get
 * first re-seals each under the current key; then a dump (which touches nothing) gives their
 * stored lastAccess, data and identity, which must be one of `candidates` (default: the model's).
 * A session absent from the dump is gone: allowed only with `allowGone` (an I/O error must never
 * make a live session disappear).
 */
export async function resync(
  m: Model,
  r: Real,
  sessions: MSession[],
  where: string,
  {
    allowGone = false,
    fate = 'deleted',
    candidates,
  }: { allowGone?: boolean; fate?: MSession['fate']; candidates?: Map<MSession, Candidate[]> } = {},
): Promise<void> {
  const store = r.inst(0)
  const todo = sessions.filter((s) => m.live(s))
  if (todo.length === 0) return
  if (m.pair) for (const s of todo) await store.get(s.id)
  const dump = await store.dump()
  const records = new Map(dump.sessions.map((rec) => [rec.id, rec]))
  for (const s of todo) {
    const rec = records.get(s.id)
    if (rec === undefined) {
      if (!allowGone)
        m.fail(`${where}: live session #${s.seq} (${s.identity ?? 'anonymous'}) is gone after an I/O error`)
      s.alive = false
      s.fate = fate
      m.log(`  resync #${s.seq}: gone`)
      continue
    }
    const got = fromRecord(rec)
    const identity = got.avatar.isAnonymous ? null : got.avatar.identity
    const data = pruned(got.data.toJSON())
    const allowed = candidates?.get(s) ?? [{ data: s.data, identity: s.identity }]
    if (!allowed.some((c) => c.identity === identity && isDeepStrictEqual(c.data, data))) {
      m.fail(
        `${where}: #${s.seq} holds ${identity ?? 'anonymous'} ${JSON.stringify(data)}, expected one of ${JSON.stringify(allowed)}`,
      )
    }
    if (got.meta.lastAccess < s.la)
      m.fail(
        `${where}: #${s.seq} holds lastAccess t+${got.meta.lastAccess - m.start}ms, older than the t+${s.la - m.start}ms stored before`,
      )
    s.identity = identity
    s.data = data
    s.la = got.meta.lastAccess
    s.gen = m.primary
    m.log(`  resync #${s.seq}: ${identity ?? 'anonymous'} ${JSON.stringify(data)} lastAccess t+${s.la - m.start}ms`)
  }
}

/** A dump record as a Session (the stores' full-record reader, whichever name it has). */
function fromRecord(rec: unknown): Session {
  const reader = (Session as unknown as { fromRecord?: (r: unknown) => Session }).fromRecord
  return reader !== undefined ? reader(rec) : Session.fromJSON(rec)
}
