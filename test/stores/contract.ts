// The behaviour every SessionStore must show. Each store's test file calls
// describeStoreContract with a factory; the factory must return a NEW, empty store on every call
// (for a file store: a fresh directory; for Redis: a fresh namespace or prefix).
// Timing tests use real short ttls: margins are wide where a session must still be alive,
// and sleeps only ever lengthen the wait where it must be gone.
import { afterEach, describe, expect, it } from 'vitest'
import { Avatar } from '../../lib/session/avatar'
import { generateSessionId } from '../../lib/core/ids'
import { SessionTooLargeError } from '../../lib/core/errors'
import { Session, type SessionRecord } from '../../lib/session/session'
import type { SessionDump, SessionStore } from '../../lib/stores/store'
import { describeConcurrencyContract } from './contract-concurrency'
import { describeIdentityContract } from './contract-identity'

export interface StoreFactoryOptions {
  defaultTtl?: number
  maxAge?: number
  touchAfter?: number
  maxBytes?: number
}

export type StoreFactory = (opts: StoreFactoryOptions) => Promise<SessionStore>

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A record as a dump would hold it, with times relative to now. */
function record(
  meta: { createdAgo: number; accessedAgo: number; ttl: number; maxAge?: number },
  data: Record<string, unknown> = {},
): SessionRecord {
  const now = Date.now()
  const m: SessionRecord['meta'] = {
    createdAt: now - meta.createdAgo,
    lastAccess: now - meta.accessedAgo,
    ttl: meta.ttl,
  }
  if (meta.maxAge !== undefined) m.maxAge = meta.maxAge
  return { id: generateSessionId(), meta: m, auth: null, data: data as SessionRecord['data'] }
}

const byId = (a: SessionRecord, b: SessionRecord) => (a.id < b.id ? -1 : 1)

export interface StoreContractOptions {
  /** The backend expires sessions by itself (Redis PX): purgeExpired finds nothing left and returns 0. */
  expiresByItself?: boolean
  /** Every name an observer of the backend sees (file names, Redis keys): checked to hold no identity. */
  exposedNames?: (store: SessionStore) => Promise<string[]>
}

export function describeStoreContract(
  name: string,
  makeStore: StoreFactory,
  contract: StoreContractOptions = {},
): void {
  describe(`SessionStore contract: ${name}`, () => {
    const open: SessionStore[] = []
    const make = async (opts: StoreFactoryOptions = {}) => {
      const store = await makeStore(opts)
      open.push(store)
      return store
    }
    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((s) => s.close()))
    })

    describeConcurrencyContract(make, { exposedNames: contract.exposedNames })
    describeIdentityContract(make)

    describe('create', () => {
      it('persists the new session at once, under a fresh valid id', async () => {
        const store = await make()
        const a = await store.create()
        const b = await store.create()
        expect(a).toBeInstanceOf(Session)
        expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}$/)
        expect(a.id).not.toBe(b.id)
        expect(a.dirty).toBe(false)
        expect((await store.get(a.id))?.id).toBe(a.id)
        expect((await store.dump()).sessions.map((r) => r.id).sort()).toEqual([a.id, b.id].sort())
      })

      it('builds the avatar from the auth snapshot (seed behaviour)', async () => {
        const store = await make()
        const s = await store.create({ identity: 'alice', tags: ['admin', 'ops'] })
        expect(s.avatar.identity).toBe('alice')
        expect(s.avatar.tags).toEqual(['admin', 'ops'])
        const got = await store.get(s.id)
        expect(got!.auth).toEqual({ identity: 'alice', tags: ['admin', 'ops'] })
        expect(got!.avatar.identity).toBe('alice')
        expect(got!.avatar.hasTag('ops')).toBe(true)
        const anon = await store.create()
        expect(anon.auth).toBeNull()
        expect((await store.get(anon.id))!.avatar.isAnonymous).toBe(true)
      })

      it('uses defaultTtl, a per-session ttl, and the store maxAge', async () => {
        const store = await make({ defaultTtl: 120_000, maxAge: 600_000 })
        const a = await store.create()
        const b = await store.create(null, { ttl: 5_000 })
        expect((await store.get(a.id))!.meta.ttl).toBe(120_000)
        expect((await store.get(b.id))!.meta.ttl).toBe(5_000)
        expect((await store.get(a.id))!.meta.maxAge).toBe(600_000)
      })

      it('rejects bad arguments and stores nothing', async () => {
        const store = await make()
        await expect(store.create(null, { ttl: 'x' as never })).rejects.toThrow(TypeError)
        await expect(store.create(null, { ttl: 0 })).rejects.toThrow(RangeError)
        await expect(store.create(null, { ttl: -1 })).rejects.toThrow(/ttl/)
        await expect(store.create(null, { ttl: 1.5 })).rejects.toThrow(RangeError)
        await expect(store.create('alice' as never)).rejects.toThrow(TypeError)
        await expect(store.create({ when: new Date() })).rejects.toThrow(/auth\.when/)
        expect((await store.dump()).sessions).toEqual([])
      })

      it('does not persist later changes to the returned session until save', async () => {
        const store = await make()
        const s = await store.create()
        s.data.set('x', 1)
        expect((await store.get(s.id))!.data.has('x')).toBe(false)
      })
    })

    describe('get', () => {
      it('round-trips data, auth and meta', async () => {
        const store = await make({ maxAge: 3_600_000 })
        const s = await store.create({ sub: 'bob', roles: 'a,b', profile: { tz: 'UTC' } })
        s.data
          .set('cart.items', 3)
          .set('cart.lines', [{ sku: 'x', qty: 1 }])
          .set('flag', true)
          .set('none', null)
        s.data.set('__proto__.x', 1).set('医生', '张')
        await store.save(s)
        const got = (await store.get(s.id))!
        expect(got.id).toBe(s.id)
        expect(got.auth).toEqual(s.auth)
        expect(JSON.stringify(got.data)).toBe(JSON.stringify(s.data))
        expect(got.meta.createdAt).toBe(s.meta.createdAt)
        expect(got.meta.ttl).toBe(s.meta.ttl)
        expect(got.meta.maxAge).toBe(3_600_000)
        expect(got.meta.lastAccess).toBeGreaterThanOrEqual(s.meta.lastAccess)
        expect(got.avatar.tags).toEqual(['a', 'b'])
        expect(got.dirty).toBe(false)
      })

      it('returns null for an unknown id', async () => {
        const store = await make()
        await store.create()
        expect(await store.get(generateSessionId())).toBeNull()
      })

      it('returns null for strings that are not session ids, without throwing', async () => {
        const store = await make()
        const real = (await store.create()).id
        const hostile: unknown[] = [
          '',
          '../x',
          '../../etc/passwd',
          '/etc/passwd',
          'a\0b',
          real + '\0',
          'a'.repeat(10_000),
          real.slice(0, 42),
          real + 'A',
          real.slice(0, 42) + 'B',
          real.replace(/^./, '+'),
        ]
        for (const id of hostile) expect(await store.get(id as string), String(id).slice(0, 40)).toBeNull()
        for (const id of hostile) expect(await store.delete(id as string), String(id).slice(0, 40)).toBe(false)
        expect(await store.get(real)).not.toBeNull()
      })

      it('get and delete reject a non-string id with a TypeError naming it', async () => {
        const store = await make()
        for (const id of [null, undefined, 42, {}, [generateSessionId()]]) {
          await expect(store.get(id as never), String(id)).rejects.toThrow(TypeError)
          await expect(store.get(id as never), String(id)).rejects.toThrow(/^id must be a string/)
          await expect(store.delete(id as never), String(id)).rejects.toThrow(TypeError)
        }
      })

      it('returns a fresh Session each time', async () => {
        const store = await make()
        const s = await store.create()
        const a = (await store.get(s.id))!
        const b = (await store.get(s.id))!
        expect(a).not.toBe(b)
        a.data.set('x', 1)
        expect(b.data.has('x')).toBe(false)
        expect((await store.get(s.id))!.data.has('x')).toBe(false)
      })

      it('returns null for an expired session, and the session is gone afterwards', async () => {
        const store = await make()
        const s = await store.create(null, { ttl: 40 })
        const keep = await store.create()
        await sleep(80)
        expect(await store.get(s.id)).toBeNull()
        expect((await store.dump()).sessions.map((r) => r.id)).toEqual([keep.id])
        expect(await store.purgeExpired()).toBe(0)
        expect(await store.get(s.id)).toBeNull()
        expect(await store.get(keep.id)).not.toBeNull()
      })
    })

    describe('maxBytes', () => {
      it('a record over maxBytes is refused with SessionTooLargeError naming the option and no part of the id', async () => {
        const store = await make({ maxBytes: 4096 })
        const s = await store.create()
        s.data.set('note', 'kept')
        await store.save(s)
        s.data.set('blob', 'x'.repeat(5000))
        const err = await store.save(s).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(SessionTooLargeError)
        expect((err as SessionTooLargeError).code).toBe('ERR_SESSION_TOO_LARGE')
        expect((err as Error).message).toMatch(/4096-byte cap \(options\.maxBytes\)/)
        for (let i = 0; i + 6 <= s.id.length; i++) expect((err as Error).message).not.toContain(s.id.slice(i, i + 6))
        expect((await store.get(s.id))!.data.toJSON()).toEqual({ note: 'kept' })
        // create with an auth over the cap: nothing stored.
        await expect(store.create({ sub: 'big', claim: 'y'.repeat(5000) })).rejects.toThrow(SessionTooLargeError)
        expect((await store.dump()).sessions.map((r) => r.id)).toEqual([s.id])
      })
    })

    describe('save and delete', () => {
      it('save persists changes that a later get sees, and clears dirty', async () => {
        const store = await make()
        const s = await store.create()
        s.data.set('step', 1)
        expect(s.dirty).toBe(true)
        await store.save(s)
        expect(s.dirty).toBe(false)
        const got = (await store.get(s.id))!
        expect(got.data.get('step')).toBe(1)
        got.data.set('step', 2)
        got.attachAvatar(new Avatar('carol', ['member']))
        await store.save(got)
        const again = (await store.get(s.id))!
        expect(again.data.get('step')).toBe(2)
        expect(again.avatar.identity).toBe('carol')
        expect(again.avatar.tags).toEqual(['member'])
      })

      it('save stores a session under a new id (regeneration), and delete removes the old one', async () => {
        const store = await make()
        const s = await store.create({ sub: 'x' })
        s.data.set('cart', 1)
        const moved = s.withId(generateSessionId())
        await store.save(moved)
        expect(await store.delete(s.id)).toBe(true)
        expect(await store.get(s.id)).toBeNull()
        const got = (await store.get(moved.id))!
        expect(got.data.get('cart')).toBe(1)
        expect(got.auth).toEqual({ sub: 'x' })
        expect(got.meta.createdAt).toBe(s.meta.createdAt)
      })

      it('save accepts only a Session', async () => {
        const store = await make()
        const s = await store.create()
        await expect(store.save(s.toJSON() as never)).rejects.toThrow(TypeError)
        await expect(store.save(null as never)).rejects.toThrow(TypeError)
      })

      it('delete removes one session and reports whether it existed', async () => {
        const store = await make()
        const a = await store.create()
        const b = await store.create()
        expect(await store.delete(a.id)).toBe(true)
        expect(await store.get(a.id)).toBeNull()
        expect(await store.delete(a.id)).toBe(false)
        expect(await store.delete(generateSessionId())).toBe(false)
        expect(await store.delete('../' + b.id)).toBe(false)
        expect(await store.get(b.id)).not.toBeNull()
      })
    })

    describe('dump and restore', () => {
      it('dump → restore into a new store gives equal sessions', async () => {
        const source = await make({ maxAge: 86_400_000 })
        const a = await source.create({ identity: 'alice', tags: ['admin'] })
        a.data.set('cart.items', 3)
        await source.save(a)
        const b = await source.create(null, { ttl: 90_000 })
        b.attachAvatar(new Avatar('bob'))
        await source.save(b)

        const dump = await source.dump()
        expect(dump.version).toBe(1)
        expect(JSON.parse(JSON.stringify(dump))).toEqual(dump) // plain JSON, nothing else

        const target = await make()
        expect(await target.restore(dump)).toBe(2)
        const again = await target.dump()
        expect([...again.sessions].sort(byId)).toEqual([...dump.sessions].sort(byId))
        for (const original of [a, b]) {
          const got = (await target.get(original.id))!
          expect(got.auth).toEqual(original.auth)
          expect(got.data.toJSON()).toEqual(original.data.toJSON())
          expect(got.avatar.identity).toBe(original.avatar.identity)
          expect(got.meta.createdAt).toBe(original.meta.createdAt)
          expect(got.meta.ttl).toBe(original.meta.ttl)
          expect(got.meta.maxAge).toBe(original.meta.maxAge)
        }
      })

      it('restore skips expired records (idle or past maxAge)', async () => {
        const store = await make()
        const live = record({ createdAgo: 5_000, accessedAgo: 100, ttl: 60_000 }, { n: 1 })
        const idle = record({ createdAgo: 5_000, accessedAgo: 2_000, ttl: 1_000 })
        const old = record({ createdAgo: 10_000, accessedAgo: 0, ttl: 60_000, maxAge: 3_000 })
        expect(await store.restore({ version: 1, sessions: [live, idle, old] })).toBe(1)
        expect(await store.get(idle.id)).toBeNull()
        expect(await store.get(old.id)).toBeNull()
        expect((await store.get(live.id))!.data.get('n')).toBe(1)
        expect((await store.dump()).sessions.map((r) => r.id)).toEqual([live.id])
      })

      it('restore rejects a malformed dump and writes nothing', async () => {
        const store = await make()
        const good = record({ createdAgo: 0, accessedAgo: 0, ttl: 60_000 })
        const bad: unknown[] = [
          null,
          [],
          { sessions: [good] },
          { version: 2, sessions: [good] },
          { version: 1, sessions: {} },
          { version: 1, sessions: [good, { ...good, id: 'x'.repeat(257) }] },
          { version: 1, sessions: [good, { ...good, id: '' }] },
          { version: 1, sessions: [good, { ...good, id: generateSessionId(), data: 'x' }] },
        ]
        for (const dump of bad)
          await expect(store.restore(dump as SessionDump), JSON.stringify(dump)).rejects.toThrow(TypeError)
        expect((await store.dump()).sessions).toEqual([])
      })

      it('restore checks every record as a write would before the first write: all or nothing', async () => {
        const store = await make({ maxBytes: 8192 })
        const good = () => record({ createdAgo: 0, accessedAgo: 0, ttl: 60_000 }, { n: 1 })
        // Each passes Session.fromJSON but would fail when written (sealed), after the good ones.
        const far = { ...good(), meta: { createdAt: 0, lastAccess: 8e15, ttl: 8e15 } } // lastAccess + ttl > 2^53
        const fraction = { ...good(), meta: { createdAt: Date.now(), lastAccess: Date.now(), ttl: 60_000.5 } }
        const big = record({ createdAgo: 0, accessedAgo: 0, ttl: 60_000 }, { blob: 'x'.repeat(9000) })
        const cases: Array<[SessionRecord, RegExp, ErrorConstructor]> = [
          [far, /dump\.sessions\[2\]: lastAccess \+ ttl .* up to 2\^53/, RangeError],
          [fraction, /dump\.sessions\[2\]: lastAccess \+ ttl/, RangeError],
          [
            big,
            /dump\.sessions\[2\]: session record is over the 8192-byte cap \(options\.maxBytes\)/,
            SessionTooLargeError as unknown as ErrorConstructor,
          ],
        ]
        for (const [bad, message, Cls] of cases) {
          const dump: SessionDump = { version: 1, sessions: [good(), good(), bad, good()] }
          const err = await store.restore(dump).catch((e: unknown) => e)
          expect(err, message.source).toBeInstanceOf(Cls)
          expect((err as Error).message).toMatch(message)
          expect((await store.dump()).sessions).toEqual([])
          for (const r of dump.sessions) expect(await store.get(r.id)).toBeNull()
        }
      })

      it('dump leaves out expired sessions', async () => {
        const store = await make()
        await store.create(null, { ttl: 30 })
        const keep = await store.create()
        await sleep(60)
        expect((await store.dump()).sessions.map((r) => r.id)).toEqual([keep.id])
      })
    })

    describe('expiry', () => {
      it('purgeExpired removes exactly the expired sessions and returns the count', async () => {
        const store = await make()
        const short = await Promise.all([1, 2, 3].map(() => store.create(null, { ttl: 30 })))
        const long = await Promise.all([1, 2].map(() => store.create()))
        await sleep(60)
        expect(await store.purgeExpired()).toBe(contract.expiresByItself ? 0 : 3)
        expect(await store.purgeExpired()).toBe(0)
        for (const s of short) expect(await store.get(s.id)).toBeNull()
        for (const s of long) expect(await store.get(s.id)).not.toBeNull()
      })

      it('measures the idle timeout from lastAccess, not createdAt', async () => {
        const store = await make()
        const recent = record({ createdAgo: 50_000, accessedAgo: 500, ttl: 10_000 })
        const stale = record({ createdAgo: 20_000, accessedAgo: 20_000, ttl: 10_000 })
        // Restore keeps the live one; check it reads back, and the stale one never appears.
        expect(await store.restore({ version: 1, sessions: [recent, stale] })).toBe(1)
        expect(await store.get(recent.id)).not.toBeNull()
        expect(await store.get(stale.id)).toBeNull()
      })

      it('enforces the idle timeout in real time; each get extends it', async () => {
        // Margins of 600 ms where the session must live: a loaded CI machine delays timers.
        const store = await make({ defaultTtl: 1000, touchAfter: 0 })
        const s = await store.create()
        await sleep(400)
        expect(await store.get(s.id)).not.toBeNull()
        await sleep(400) // 800 ms since creation, 400 since the last access
        expect(await store.get(s.id)).not.toBeNull()
        await sleep(1050)
        expect(await store.get(s.id)).toBeNull()
      })

      it('enforces the absolute maxAge even while the session is in use', async () => {
        const store = await make({ defaultTtl: 60_000, maxAge: 1000, touchAfter: 0 })
        const s = await store.create()
        await sleep(400)
        const got = (await store.get(s.id))!
        expect(got).not.toBeNull()
        got.data.set('busy', true)
        await store.save(got)
        await sleep(650)
        expect(await store.get(s.id)).toBeNull()
      })

      it('touchAfter: a get within it leaves lastAccess alone, a get after it persists it', async () => {
        const store = await make({ touchAfter: 1000 })
        const s = await store.create()
        const stored = async () => (await store.dump()).sessions.find((r) => r.id === s.id)!.meta.lastAccess
        await sleep(20)
        const early = (await store.get(s.id))!
        expect(early.meta.lastAccess).toBeGreaterThan(s.meta.lastAccess) // the returned session is touched
        expect(await stored()).toBe(s.meta.createdAt) // but the store was not rewritten
        await sleep(1050)
        const late = (await store.get(s.id))!
        expect(await stored()).toBe(late.meta.lastAccess)
        expect(await stored()).toBeGreaterThanOrEqual(s.meta.createdAt + 1050)
      })
    })

    describe('close', () => {
      it('can be called twice; afterwards calls reject with ERR_SESSION_CLOSED', async () => {
        const store = await make()
        const s = await store.create()
        await store.close()
        await expect(store.close()).resolves.toBeUndefined()
        await expect(store.get(s.id)).rejects.toMatchObject({ code: 'ERR_SESSION_CLOSED' })
        await expect(store.create()).rejects.toMatchObject({ code: 'ERR_SESSION_CLOSED' })
      })
    })
  })
}
