// The operations of the store model test, as fast-check commands: each runs one operation on the
// real stores, checks what came back against the model (model.ts) and advances the model.
// Commands name sessions by generated numbers resolved against the model when they run, so a
// command stays valid when the shrinker removes the ones before it.
import fc from 'fast-check'
import { vi } from 'vitest'

import { SessionConflictError } from '../../../lib/core/errors'
import { Avatar } from '../../../lib/session/avatar'
import type { Session } from '../../../lib/session/session'
import type { SessionInfo } from '../../../lib/stores/store'
import { secretOf, type Fault, type StoreKind } from './backends'
import {
  applyChanges,
  expectSessionError,
  IDENTITIES,
  PATHS,
  resync,
  SAFETY_MS,
  type Candidate,
  type Model,
  type MSession,
  type Real,
} from './model'

type Cmd = fc.AsyncCommand<Model, Real>

/** An injected error: which fault, and which sessions it hits (the n-th and the k - 1 after). */
export interface FaultArg {
  fault: Fault
  n: number
  k: number
}

type Outcome<T> = { ok: true; value: T } | { ok: false; err: unknown }

const who = (identity: string | null) => identity ?? 'anonymous'
const errText = (err: unknown) =>
  err instanceof Error
    ? `${err.constructor.name}${(err as { code?: string }).code ? ` ${(err as { code?: string }).code}` : ''}: ${err.message}`
    : String(err)
const faultText = (f: FaultArg | undefined) =>
  f === undefined
    ? ''
    : f.fault.kind === 'chown'
      ? ` [fault: chown ${f.k} session file(s) from #${f.n}${f.fault.indexes ? ' + index files' : ''}]`
      : ` [fault: ${f.fault.command} rejects x${f.fault.times} after ${f.fault.skip}]`

async function attempt<T>(p: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await p() }
  } catch (err) {
    return { ok: false, err }
  }
}

/**
 * Runs `op` with `fault` injected (on instance `inst`; chown: on the files of `victims`) and
 * removed afterwards. `faulted` is false when no fault was given or none was hit (then the
 * operation is held to the clean rules).
 */
async function withFault<T>(
  r: Real,
  fault: FaultArg | undefined,
  inst: number,
  victims: MSession[],
  op: () => Promise<T>,
): Promise<{ out: Outcome<T>; faulted: boolean; note: string }> {
  if (fault === undefined) return { out: await attempt(op), faulted: false, note: '' }
  await r.backend.inject(
    fault.fault,
    inst % r.backend.instances.length,
    victims.map((s) => s.id),
  )
  const out = await attempt(op)
  const hit = await r.backend.clear()
  return { out, faulted: hit, note: hit ? '' : ' (fault not hit)' }
}

function unexpected(m: Model, where: string, err: unknown): never {
  return m.fail(`${where}: rejected with ${errText(err)}`)
}

function addSession(m: Model, s: Session, identity: string | null, ttl: number): MSession {
  const ms: MSession = {
    seq: m.sessions.length,
    id: s.id,
    identity,
    ttl,
    createdAt: m.now,
    la: m.now,
    data: {},
    alive: true,
    fate: null,
    gen: m.primary,
  }
  m.sessions.push(ms)
  m.expectSame(ms, s, `create #${ms.seq}`)
  if (s.meta.lastAccess !== m.now || s.meta.ttl !== ttl)
    m.fail(`create #${ms.seq}: meta ${JSON.stringify(s.meta)}, expected lastAccess ${m.now} ttl ${ttl}`)
  return ms
}

/** Every session in `gone` reads as null from every instance. */
async function expectGone(m: Model, r: Real, gone: MSession[], where: string): Promise<void> {
  for (const s of gone) {
    for (let i = 0; i < m.instances; i++) {
      const got = await r.inst(i).get(s.id)
      if (got !== null) m.fail(`${where}: #${s.seq} (${s.fate}) still reads back from instance ${i}`)
    }
  }
}

/**
 * revokeSessions that may answer SessionConflictError (it could not finish): retried, without
 * competition, until it resolves. Anything else is a failure.
 */
async function revokeUntilDone(
  m: Model,
  r: Real,
  identity: string,
  except: MSession | null,
  where: string,
): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const out = await attempt(() => r.inst(0).revokeSessions(identity, except ? { except: except.id } : {}))
    if (out.ok) {
      m.log(`  retried revokeSessions(${identity}) → ${out.value}`)
      return
    }
    if (!(out.err instanceof SessionConflictError)) unexpected(m, `${where} (retry)`, out.err)
  }
  m.fail(`${where}: revokeSessions kept rejecting with SessionConflictError with no competing writer`)
}

/** After revokeSessions(identity, except) resolved: every victim is gone everywhere; the kept one re-learnt. */
async function afterRevoke(
  m: Model,
  r: Real,
  identity: string,
  except: MSession | null,
  victims: MSession[],
  where: string,
): Promise<void> {
  for (const v of victims) {
    v.alive = false
    v.fate = 'revoked'
  }
  await expectGone(m, r, victims, where)
  // The kept session may be re-stamped by the revocation: learn its stored state again.
  if (except !== null && except.identity === identity) await resync(m, r, [except], `${where} (kept session)`)
}

function expectListed(
  m: Model,
  identity: string,
  infos: SessionInfo[],
  expected: MSession[],
  mayMiss: MSession[] | 'any',
  where: string,
): void {
  const byId = new Map(m.sessions.map((s) => [s.id, s]))
  const got = new Set<string>()
  for (const info of infos) {
    const s = byId.get(info.id)
    if (s === undefined) m.fail(`${where}: listed an id this run never created`)
    if (got.has(info.id)) m.fail(`${where}: listed #${s.seq} twice`)
    got.add(info.id)
    if (!expected.includes(s))
      m.fail(
        `${where}: listed #${s.seq} (${s.identity ?? 'anonymous'}, ${m.why(s)}), which is not a live session of ${identity}`,
      )
    if (info.lastAccess !== s.la || info.expiresAt !== s.la + s.ttl || info.createdAt !== s.createdAt) {
      m.fail(
        `${where}: #${s.seq} listed as ${JSON.stringify(info)}, model: createdAt ${s.createdAt} lastAccess ${s.la} expiresAt ${s.la + s.ttl}`,
      )
    }
  }
  const missing = expected.filter((s) => !got.has(s.id) && (mayMiss === 'any' ? false : !mayMiss.includes(s)))
  if (missing.length > 0) {
    m.fail(
      `${where}: found ${infos.length} of ${expected.length} live sessions of ${identity}; missing ${missing.map((s) => `#${s.seq}`).join(' ')}`,
    )
  }
}

class Create implements Cmd {
  constructor(
    readonly identity: string | null,
    readonly ttl: number | undefined,
    readonly inst: number,
  ) {}
  check(): boolean {
    return true
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    const where = `${this}`
    const out = await attempt(() =>
      r
        .inst(this.inst)
        .create(
          this.identity === null ? null : { identity: this.identity },
          this.ttl === undefined ? undefined : { ttl: this.ttl },
        ),
    )
    if (!out.ok) unexpected(m, where, out.err)
    const s = addSession(m, out.value, this.identity, this.ttl ?? m.config.ttl)
    m.log(`${where} → #${s.seq}`)
  }
  toString(): string {
    return `create(${who(this.identity)}${this.ttl === undefined ? '' : `, ttl ${this.ttl}`}) @${this.inst}`
  }
}

/** Many sessions of one identity at once, over both instances: a big, concurrently written index. */
class CreateMany implements Cmd {
  constructor(
    readonly identity: string,
    readonly count: number,
  ) {}
  check(): boolean {
    return true
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    const where = `${this}`
    const out = await attempt(() =>
      Promise.all(Array.from({ length: this.count }, (_, i) => r.inst(i).create({ identity: this.identity }))),
    )
    if (!out.ok) unexpected(m, where, out.err)
    const made = out.value.map((s) => addSession(m, s, this.identity, m.config.ttl))
    m.log(`${where} → #${made[0].seq}..#${made[made.length - 1].seq}`)
  }
  toString(): string {
    return `createMany(${this.identity} x${this.count})`
  }
}

/** get(id); with `keep`, the copy is kept in that slot (a request that saves later). */
class Get implements Cmd {
  constructor(
    readonly pick: number,
    readonly live: boolean,
    readonly inst: number,
    readonly keep: number | null,
    readonly fault: FaultArg | undefined,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.sessions.length > 0
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    const s = m.pick(this.pick, this.live)!
    const where = `get(#${s.seq} ${m.why(s)})${this.keep === null ? '' : ` keep in slot ${this.keep}`} @${this.inst}${faultText(this.fault)}`
    const { out, faulted, note } = await withFault(r, this.fault, this.inst, [s], () => r.inst(this.inst).get(s.id))
    if (!faulted) {
      if (!out.ok) unexpected(m, where, out.err)
      m.expectGet(s, out.value, where)
      m.log(`${where} → ${out.value === null ? 'null' : 'session'}`, note)
      if (this.keep !== null) {
        r.copies[this.keep] = out.value
        m.copies[this.keep] =
          out.value === null ? null : { seq: s.seq, la: m.now, changes: new Map(), login: undefined }
      }
      return
    }
    if (!out.ok) expectSessionError(m, out.err, where)
    else if (out.value !== null) {
      if (!m.live(s)) m.fail(`${where}: #${s.seq} (${m.why(s)}) read back under an I/O error`)
      m.expectSame(s, out.value, where)
    }
    m.log(`${where} → ${out.ok ? (out.value === null ? 'null' : 'session') : errText(out.err)}`, note)
    await resync(m, r, [s], where)
  }
  toString(): string {
    return `get(${this.live ? 'live' : 'any'} ${this.pick})${this.keep === null ? '' : ` keep ${this.keep}`} @${this.inst}${faultText(this.fault)}`
  }
}

/** Changes one path of a kept copy (set, or delete with null). */
class Change implements Cmd {
  constructor(
    readonly slot: number,
    readonly path: string,
    readonly value: number | null,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.copies[this.slot] !== null
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    const copy = r.copies[this.slot]!
    // Deleting a path the copy does not hold changes nothing (a later save leaves it as stored).
    const noop = this.value === null && !copy.data.has(this.path)
    if (this.value === null) copy.data.delete(this.path)
    else copy.data.set(this.path, this.value)
    if (!noop) m.copies[this.slot]!.changes.set(this.path, this.value)
    m.log(`${this} (copy of #${m.copies[this.slot]!.seq})${noop ? ' (not held: no change)' : ''}`)
  }
  toString(): string {
    return this.value === null
      ? `slot ${this.slot}: delete ${this.path}`
      : `slot ${this.slot}: set ${this.path} = ${this.value}`
  }
}

/** A login on a kept copy: attachAvatar (the copy's avatar replaces the stored one when saved). */
class Login implements Cmd {
  constructor(
    readonly slot: number,
    readonly identity: string,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.copies[this.slot] !== null
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    r.copies[this.slot]!.attachAvatar(new Avatar(this.identity))
    m.copies[this.slot]!.login = this.identity
    m.log(`${this} (copy of #${m.copies[this.slot]!.seq})`)
  }
  toString(): string {
    return `slot ${this.slot}: login as ${this.identity}`
  }
}

/** save() of a kept copy: true and its own changes on top of the latest version while the
 *  session lives; false and nothing written once it is deleted, revoked or expired. */
class Save implements Cmd {
  constructor(
    readonly slot: number,
    readonly inst: number,
    readonly fault: FaultArg | undefined,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.copies[this.slot] !== null
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    const c = m.copies[this.slot]!
    const s = m.sessions[c.seq]
    const expected = m.live(s)
    const merged: Candidate = { data: applyChanges(s.data, c.changes), identity: c.login ?? s.identity }
    const where = `save(slot ${this.slot}: copy of #${s.seq} ${m.why(s)}) @${this.inst}${faultText(this.fault)}`
    const { out, faulted, note } = await withFault(r, this.fault, this.inst, [s], () =>
      r.inst(this.inst).save(r.copies[this.slot]!),
    )
    m.log(`${where} → ${out.ok ? out.value : errText(out.err)}`, note)
    const apply = () => {
      s.data = merged.data
      s.identity = merged.identity
      s.la = Math.max(c.la, s.la)
      s.gen = m.primary
      c.changes = new Map()
      c.login = undefined
      c.la = s.la
    }
    if (!out.ok) {
      if (!faulted) unexpected(m, where, out.err)
      expectSessionError(m, out.err, where)
      // Written or not: either the old record or this copy's changes on top of it.
      await resync(m, r, [s], where, { candidates: new Map([[s, [{ data: s.data, identity: s.identity }, merged]]]) })
      return
    }
    if (out.value !== expected) {
      m.fail(`${where}: returned ${out.value}, expected ${expected} (#${s.seq} is ${m.why(s)})`)
    }
    if (out.value) apply()
  }
  toString(): string {
    return `save(slot ${this.slot}) @${this.inst}${faultText(this.fault)}`
  }
}

class Delete implements Cmd {
  constructor(
    readonly pick: number,
    readonly live: boolean,
    readonly inst: number,
    readonly fault: FaultArg | undefined,
    /** Delete the session of the copy in this slot (a logout while another request holds it), if any. */
    readonly slot: number | null = null,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.sessions.length > 0
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    const held = this.slot === null ? null : m.copies[this.slot]
    const s = held ? m.sessions[held.seq] : m.pick(this.pick, this.live)!
    const live = m.live(s)
    const where = `delete(#${s.seq} ${m.why(s)}) @${this.inst}${faultText(this.fault)}`
    const { out, faulted, note } = await withFault(r, this.fault, this.inst, [s], () => r.inst(this.inst).delete(s.id))
    m.log(`${where} → ${out.ok ? out.value : errText(out.err)}`, note)
    if (!out.ok) {
      if (!faulted) unexpected(m, where, out.err)
      expectSessionError(m, out.err, where)
      await resync(m, r, [s], where, { allowGone: true, fate: 'deleted' })
      return
    }
    if (live && !out.value) {
      if (!faulted) m.fail(`${where}: returned false for a live session`)
      await resync(m, r, [s], where)
      return
    }
    if (!live && out.value && s.fate === 'deleted') m.fail(`${where}: returned true for a session deleted before`)
    if (out.value) {
      s.alive = false
      s.fate = 'deleted'
    }
  }
  toString(): string {
    const target =
      this.slot === null
        ? `${this.live ? 'live' : 'any'} ${this.pick}`
        : `held in slot ${this.slot}, else ${this.live ? 'live' : 'any'} ${this.pick}`
    return `delete(${target}) @${this.inst}${faultText(this.fault)}`
  }
}

/** revokeSessions(identity[, { except }]): every other live session of it is gone from every instance. */
class Revoke implements Cmd {
  constructor(
    readonly who: string,
    readonly except: number | null,
    readonly inst: number,
    readonly fault: FaultArg | undefined,
    /** Revoke the identity of the session held in this slot (if it has one) instead of `who`. */
    readonly slot: number | null = null,
  ) {}
  check(): boolean {
    return true
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    const held = this.slot === null ? null : m.copies[this.slot]
    const identity = (held ? m.sessions[held.seq].identity : null) ?? this.who
    const except = this.except === null ? null : (m.pick(this.except, true, identity) ?? m.pick(this.except, true))
    const victims = m.liveOf(identity).filter((s) => s !== except)
    const hit = this.fault === undefined ? [] : m.some(victims, this.fault.n, this.fault.k)
    const where = `revokeSessions(${identity}${except ? `, except #${except.seq}` : ''}) @${this.inst}${faultText(this.fault)} [live: ${victims.map((s) => `#${s.seq}`).join(' ')}]`
    const { out, faulted, note } = await withFault(r, this.fault, this.inst, hit, () =>
      r.inst(this.inst).revokeSessions(identity, except ? { except: except.id } : {}),
    )
    m.log(`${where} → ${out.ok ? out.value : errText(out.err)}`, note)
    if (!out.ok) {
      if (faulted) expectSessionError(m, out.err, where)
      else if (!(out.err instanceof SessionConflictError)) unexpected(m, where, out.err)
      await revokeUntilDone(m, r, identity, except, where)
    }
    await afterRevoke(m, r, identity, except, victims, where)
    if (out.ok && (faulted ? out.value > victims.length : out.value !== victims.length)) {
      m.fail(`${where}: returned ${out.value}, but ${victims.length} live sessions were revoked`)
    }
  }
  toString(): string {
    const target = this.slot === null ? this.who : `identity held in slot ${this.slot}, else ${this.who}`
    return `revoke(${target}${this.except === null ? '' : `, except live ${this.except}`}) @${this.inst}${faultText(this.fault)}`
  }
}

/**
 * revokeSessions racing other requests that keep saving one of its sessions (on the other
 * instance): `savers` loops, each either get+save per round or saving one kept copy over and over,
 * started `k` microtasks apart so their writes land at different points of the revocation.
 */
class RevokeRacing implements Cmd {
  constructor(
    readonly identity: string,
    readonly victim: number,
    readonly except: number | null,
    readonly savers: number,
    readonly mode: 'get' | 'copy',
    readonly inst: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.liveOf(this.identity).length > 0
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    const live = m.liveOf(this.identity)
    const target = live[this.victim % live.length]
    const others = live.filter((s) => s !== target)
    const except = this.except === null || others.length === 0 ? null : others[this.except % others.length]
    const victims = live.filter((s) => s !== except)
    const where = `revokeSessions(${this.identity}${except ? `, except #${except.seq}` : ''}) @${this.inst} racing ${this.savers} ${this.mode} saver(s) of #${target.seq} [live: ${victims.map((s) => `#${s.seq}`).join(' ')}]`
    const saver = r.inst(this.inst + 1)
    let stop = false
    let saves = 0
    const loops = Array.from({ length: this.savers }, async (_, k) => {
      let copy = this.mode === 'copy' ? await saver.get(target.id) : null
      for (let t = 0; t < k; t++) await Promise.resolve()
      for (let i = 0; i < 300 && !stop; i++) {
        if (this.mode === 'get') copy = await saver.get(target.id)
        if (copy === null) return
        copy.data.set(`race${k}`, i)
        try {
          if (!(await saver.save(copy))) return
          saves++
        } catch (err) {
          if (err instanceof SessionConflictError) return // too many competing writers: this request gives up
          throw err
        }
      }
    })
    const out = await attempt(() =>
      r.inst(this.inst).revokeSessions(this.identity, except ? { except: except.id } : {}),
    )
    stop = true
    const ended = await Promise.allSettled(loops)
    m.log(`${where} → ${out.ok ? out.value : errText(out.err)} (${saves} competing saves)`)
    for (const e of ended) if (e.status === 'rejected') unexpected(m, `${where}: a competing saver`, e.reason)
    if (!out.ok) {
      if (!(out.err instanceof SessionConflictError)) unexpected(m, where, out.err)
      await revokeUntilDone(m, r, this.identity, except, where)
    }
    await afterRevoke(m, r, this.identity, except, victims, where)
    if (out.ok && out.value !== victims.length)
      m.fail(`${where}: returned ${out.value}, but ${victims.length} live sessions were revoked`)
  }
  toString(): string {
    return `revokeRacing(${this.identity}, victim ${this.victim}${this.except === null ? '' : `, except ${this.except}`}, ${this.savers} ${this.mode} savers) @${this.inst}`
  }
}

/** listSessions(identity): exactly its live sessions, with their stored times. */
class List implements Cmd {
  constructor(
    readonly identity: string,
    readonly inst: number,
    readonly fault: FaultArg | undefined,
  ) {}
  check(): boolean {
    return true
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    const expected = m.liveOf(this.identity)
    const hit = this.fault === undefined ? [] : m.some(expected, this.fault.n, this.fault.k)
    const where = `listSessions(${this.identity}) @${this.inst}${faultText(this.fault)}`
    const { out, faulted, note } = await withFault(r, this.fault, this.inst, hit, () =>
      r.inst(this.inst).listSessions(this.identity),
    )
    m.log(`${where} → ${out.ok ? `${out.value.length} of ${expected.length}` : errText(out.err)}`, note)
    if (!out.ok) {
      if (!faulted) unexpected(m, where, out.err)
      expectSessionError(m, out.err, where)
      return
    }
    // Under an injected error a session it could not read may be left out (never pruned: later
    // lists must find it again).
    const f = this.fault?.fault
    expectListed(
      m,
      this.identity,
      out.value,
      expected,
      !faulted ? [] : f?.kind === 'chown' && !f.indexes ? hit : 'any',
      where,
    )
  }
  toString(): string {
    return `list(${this.identity}) @${this.inst}${faultText(this.fault)}`
  }
}

/** purgeExpired(): removes expired sessions only. */
class Sweep implements Cmd {
  constructor(
    readonly inst: number,
    readonly fault: FaultArg | undefined,
  ) {}
  check(): boolean {
    return true
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    const live = m.sessions.filter((s) => m.live(s))
    const hit = this.fault === undefined ? [] : m.some(live, this.fault.n, this.fault.k)
    const where = `purgeExpired() @${this.inst}${faultText(this.fault)}${hit.length ? ` [unreadable: ${hit.map((s) => `#${s.seq}`).join(' ')}]` : ''}`
    const { out, faulted, note } = await withFault(r, this.fault, this.inst, hit, () =>
      r.inst(this.inst).purgeExpired(),
    )
    m.log(`${where} → ${out.ok ? out.value : errText(out.err)}`, note)
    if (!out.ok) {
      if (!faulted) unexpected(m, where, out.err)
      expectSessionError(m, out.err, where)
    }
  }
  toString(): string {
    return `sweep @${this.inst}${faultText(this.fault)}`
  }
}

/** Moves the clock; never to within SAFETY_MS before a live session's expiry (see model.ts). */
class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check(): boolean {
    return true
  }
  async run(m: Model): Promise<void> {
    countOp()
    let t = m.now + this.ms
    for (let moved = true; moved; ) {
      moved = false
      for (const s of m.sessions) {
        const end = s.la + s.ttl
        if (s.alive && t > end - SAFETY_MS && t < end) {
          t = end
          moved = true
        }
      }
    }
    m.now = t
    vi.setSystemTime(t)
    m.log(`${this} → t+${t - m.start}ms`)
  }
  toString(): string {
    return `advance(${this.ms} ms)`
  }
}

/**
 * Key rotation, in the two steps a deployment takes: every instance reopened with
 * secrets [K(n+1), K(n)] (reads re-seal under the new key), then with secret K(n+1) alone
 * (what was never re-sealed is unreadable from then on).
 */
class Rotate implements Cmd {
  check(): boolean {
    return true
  }
  async run(m: Model, r: Real): Promise<void> {
    countOp()
    if (!m.pair) {
      await r.backend.rotate([secretOf(m.gen + 1), secretOf(m.gen)])
      m.pair = true
      m.log(`rotate → secrets [K${m.gen + 1}, K${m.gen}]`)
      return
    }
    await r.backend.rotate([secretOf(m.gen + 1)])
    const old = m.gen
    m.gen++
    m.pair = false
    const lost = m.sessions.filter((s) => s.alive && s.gen === old)
    for (const s of lost) {
      s.alive = false
      s.fate = 'unreadable'
    }
    m.log(
      `rotate → secret K${m.gen} alone${lost.length ? ` (unreadable now: ${lost.map((s) => `#${s.seq}`).join(' ')})` : ''}`,
    )
  }
  toString(): string {
    return 'rotate'
  }
}

/** The end of every run: every identity listed from every instance, every session read. */
export async function finalCheck(m: Model, r: Real): Promise<void> {
  m.log('final check')
  for (const identity of IDENTITIES) {
    for (let i = 0; i < m.instances; i++) {
      const where = `final listSessions(${identity}) @${i}`
      const out = await attempt(() => r.inst(i).listSessions(identity))
      if (!out.ok) unexpected(m, where, out.err)
      expectListed(m, identity, out.value, m.liveOf(identity), [], where)
    }
  }
  for (const s of m.sessions) {
    const where = `final get(#${s.seq} ${m.why(s)})`
    const out = await attempt(() => r.inst(0).get(s.id))
    if (!out.ok) unexpected(m, where, out.err)
    m.expectGet(s, out.value, where)
  }
}

/** Counts operations run (shrinking included), for the test's report. */
export const counter = { ops: 0 }
function countOp(): void {
  counter.ops++
}

const TTLS = [20 * 60_000, 2 * 3_600_000]
// Mostly small steps (touch throttles: 1 min, 10 min), now and then past every ttl.
const STEPS: Array<[number, number]> = [
  [1, 3],
  [1_000, 2],
  [45_000, 2],
  [5 * 60_000, 3],
  [20 * 60_000, 2],
  [50 * 60_000, 1],
  [2 * 3_600_000, 1],
  [5 * 3_600_000, 1],
]

/** The generated operations for one store kind (faults and rotation only where the store has them). */
export function commandArb(
  kind: StoreKind,
  { faults, skip = new Set() }: { faults: boolean; skip?: ReadonlySet<string> },
): fc.Arbitrary<Cmd> {
  const inst = fc.nat(1)
  const pick = fc.nat(999)
  const slot = fc.nat(2)
  const live = fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) })
  const identity = fc.oneof(
    { weight: 4, arbitrary: fc.constant<string>('alice') },
    { weight: 2, arbitrary: fc.constant<string>('bob') },
    { weight: 1, arbitrary: fc.constant<string>('carol') },
  )
  const anyIdentity = fc.oneof({ weight: 3, arbitrary: identity }, { weight: 1, arbitrary: fc.constant(null) })
  const faultOf: fc.Arbitrary<FaultArg> | null =
    !faults || kind === 'memory'
      ? null
      : kind === 'file'
        ? fc.record({
            fault: fc.record({ kind: fc.constant('chown' as const), indexes: fc.boolean() }),
            n: pick,
            k: fc.integer({ min: 1, max: 3 }),
          })
        : fc.record({
            fault: fc.record({
              kind: fc.constant('redis' as const),
              command: fc.constantFrom('GETRANGE' as const, 'script' as const, 'ZREM' as const),
              skip: fc.nat(3),
              times: fc.constantFrom(1, 1000),
            }),
            n: pick,
            k: fc.constant(1),
          })
  // An injected error in one operation of `1 + clean` (a sweep's or a list's: one in two).
  const faultOr = (clean: number): fc.Arbitrary<FaultArg | undefined> =>
    faultOf === null || skip.has('faults')
      ? fc.constant(undefined)
      : fc.oneof({ weight: clean, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: faultOf })
  const fault = faultOr(3)
  const arbs: Array<fc.WeightedArbitrary<Cmd> & { name: string }> = [
    {
      name: 'create',
      weight: 6,
      arbitrary: fc
        .tuple(anyIdentity, fc.option(fc.constantFrom(...TTLS), { nil: undefined }), inst)
        .map(([i, t, n]) => new Create(i, t, n)),
    },
    {
      name: 'createMany',
      weight: 1,
      // A few, or more than a 2 KiB index file holds (~24 entries).
      arbitrary: fc
        .tuple(identity, fc.oneof(fc.integer({ min: 3, max: 10 }), fc.integer({ min: 25, max: 40 })))
        .map(([i, c]) => new CreateMany(i, c)),
    },
    {
      name: 'get',
      weight: 8,
      arbitrary: fc
        .tuple(pick, live, inst, fc.option(slot, { nil: null, freq: 2 }), fault)
        .map(([p, l, n, k, f]) => new Get(p, l, n, k, k === null ? f : undefined)),
    },
    {
      name: 'change',
      weight: 5,
      arbitrary: fc
        .tuple(slot, fc.constantFrom(...PATHS), fc.option(fc.nat(99), { nil: null, freq: 4 }))
        .map(([s, p, v]) => new Change(s, p, v)),
    },
    { name: 'login', weight: 1, arbitrary: fc.tuple(slot, identity).map(([s, i]) => new Login(s, i)) },
    { name: 'save', weight: 5, arbitrary: fc.tuple(slot, inst, fault).map(([s, n, f]) => new Save(s, n, f)) },
    {
      name: 'delete',
      weight: 3,
      arbitrary: fc
        .tuple(pick, live, inst, fault, fc.option(slot, { nil: null }))
        .map(([p, l, n, f, h]) => new Delete(p, l, n, f, h)),
    },
    {
      name: 'revoke',
      weight: 4,
      arbitrary: fc
        .tuple(identity, fc.option(pick, { nil: null }), inst, fault, fc.option(slot, { nil: null }))
        .map(([i, e, n, f, h]) => new Revoke(i, e, n, f, h)),
    },
    {
      name: 'race',
      weight: 2,
      arbitrary: fc
        .tuple(
          identity,
          pick,
          fc.option(pick, { nil: null }),
          fc.integer({ min: 1, max: 6 }),
          fc.constantFrom('get' as const, 'copy' as const),
          inst,
        )
        .map(([i, v, e, s, mo, n]) => new RevokeRacing(i, v, e, s, mo, n)),
    },
    { name: 'list', weight: 4, arbitrary: fc.tuple(identity, inst, faultOr(1)).map(([i, n, f]) => new List(i, n, f)) },
    { name: 'sweep', weight: 3, arbitrary: fc.tuple(inst, faultOr(1)).map(([n, f]) => new Sweep(n, f)) },
    {
      name: 'advance',
      weight: 3,
      arbitrary: fc
        .oneof(...STEPS.map(([ms, weight]) => ({ weight, arbitrary: fc.constant(ms) })))
        .map((ms) => new Advance(ms)),
    },
  ]
  if (kind !== 'memory') arbs.push({ name: 'rotate', weight: 3, arbitrary: fc.constant(new Rotate()) })
  return fc.oneof(...arbs.filter((a) => !skip.has(a.name)))
}
