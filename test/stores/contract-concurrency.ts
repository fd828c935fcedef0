// The concurrency part of the SessionStore contract: versioned compare-and-swap saves,
// touches that never resurrect, the touch throttle, hand-built sessions, ids up to 256 characters,
// and the identity index behind listSessions/revokeSessions. describeStoreContract runs it for
// every store (memory, files, Redis).
import { describe, expect, it } from 'vitest'
import { Avatar } from '../../lib/session/avatar'
import type { Rebuild, RecordWrite, WriteCondition, WriteOutcome } from '../../lib/stores/base-store'
import { SessionConflictError } from '../../lib/core/errors'
import { generateSessionId } from '../../lib/core/ids'
import { persistedTouch, Session } from '../../lib/session/session'
import type { SessionStore } from '../../lib/stores/store'
import type { StoreFactoryOptions } from './contract'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** The protected primitives a test may wrap (every store goes through them). */
interface Primitives {
  readRecord(name: string, now: number): Promise<unknown>
  writeRecord(write: RecordWrite, condition: WriteCondition, rebuild?: Rebuild): Promise<WriteOutcome>
}
const primitives = (store: SessionStore) => store as unknown as Primitives

export interface ConcurrencyContractOptions {
  /** Every name an observer of the backend can see (file names, Redis keys), for stores that have any. */
  exposedNames?: (store: SessionStore) => Promise<string[]>
}

export function describeConcurrencyContract(
  make: (opts?: StoreFactoryOptions) => Promise<SessionStore>,
  options: ConcurrencyContractOptions,
): void {
  describe('concurrent writers (versioned saves)', () => {
    it('two copies that change different paths both keep their changes', async () => {
      const store = await make()
      const s = await store.create({ identity: 'alice' })
      s.data.set('cart.items', 1).set('prefs.theme', 'light')
      expect(await store.save(s)).toBe(true)
      const a = (await store.get(s.id))!
      const b = (await store.get(s.id))!
      a.data.set('cart.items', 2)
      a.data.delete('prefs.theme')
      a.avatar.data.set('seen', 'a')
      b.data.set('cart.coupon', 'X1')
      b.data.set('visits', 7)
      b.avatar.data.set('lang', 'fr')
      expect(await store.save(a)).toBe(true)
      expect(await store.save(b)).toBe(true)
      const got = (await store.get(s.id))!
      expect(got.data.toJSON()).toEqual({ cart: { items: 2, coupon: 'X1' }, prefs: {}, visits: 7 })
      expect(got.avatar.data.toJSON()).toEqual({ seen: 'a', lang: 'fr' })
      // The stale copy now holds what was stored, and saves cleanly again.
      expect(b.data.get('cart.items')).toBe(2)
      expect(b.dirty).toBe(false)
      b.data.set('visits', 8)
      expect(await store.save(b)).toBe(true)
      expect((await store.get(s.id))!.data.get('cart.items')).toBe(2)
    })

    it('one path changed by both: the later save wins for that path only', async () => {
      const store = await make()
      const s = await store.create()
      const a = (await store.get(s.id))!
      const b = (await store.get(s.id))!
      a.data.set('color', 'red').set('a', 1)
      b.data.set('color', 'blue').set('b', 1)
      await store.save(a)
      await store.save(b)
      expect((await store.get(s.id))!.data.toJSON()).toEqual({ color: 'blue', a: 1, b: 1 })
    })

    it('a login (attachAvatar) in one copy survives a data change saved later from another', async () => {
      const store = await make()
      const s = await store.create()
      const a = (await store.get(s.id))!
      const b = (await store.get(s.id))!
      a.attachAvatar(new Avatar('carol', ['admin']))
      b.data.set('n', 1)
      await store.save(a)
      await store.save(b)
      const got = (await store.get(s.id))!
      expect(got.avatar.identity).toBe('carol')
      expect(got.data.get('n')).toBe(1)
    })

    it('delete, then a late save of a copy read before: false, and the session stays gone', async () => {
      const store = await make()
      const s = await store.create({ identity: 'alice' })
      const late = (await store.get(s.id))!
      expect(await store.delete(s.id)).toBe(true)
      late.data.set('x', 1)
      expect(await store.save(late)).toBe(false)
      expect(await store.get(s.id)).toBeNull()
      expect(await store.listSessions('alice')).toEqual([])
    })

    it('a touch that lands after a delete does not bring the session back', async () => {
      const store = await make({ touchAfter: 0 })
      const s = await store.create()
      await sleep(5) // lastAccess now stale: the next get writes it back
      const p = primitives(store)
      const read = p.readRecord.bind(store)
      let raced = false
      p.readRecord = async (name, now) => {
        const found = await read(name, now)
        if (!raced) {
          raced = true
          // deleted by another request between this get's read and its touch
          await store.delete(s.id)
        }
        return found
      }
      expect(await store.get(s.id)).toBeNull()
      p.readRecord = read
      expect(await store.get(s.id)).toBeNull()
      expect((await store.dump()).sessions).toEqual([])
    })

    it('a touch never rolls back a save made between its read and its write', async () => {
      const store = await make({ touchAfter: 0 })
      const s = await store.create()
      await sleep(5)
      const other = (await store.get(s.id))!
      const p = primitives(store)
      const read = p.readRecord.bind(store)
      let raced = false
      p.readRecord = async (name, now) => {
        const found = await read(name, now)
        if (!raced) {
          raced = true
          other.data.set('saved', true)
          await store.save(other)
        }
        return found
      }
      await store.get(s.id)
      p.readRecord = read
      expect((await store.get(s.id))!.data.get('saved')).toBe(true)
    })

    it('a copy idle past its ttl still saves onto the version another request kept alive; once truly expired, false', async () => {
      // Every duration scaled under an emulator (PLATFORM_TIMEOUT_SCALE, capped): a store call
      // there can take longer than the 0.4 s the unscaled ttl leaves between the steps.
      const k = Math.min(Number(process.env.PLATFORM_TIMEOUT_SCALE ?? 1), 4)
      const store = await make({ touchAfter: 0 })
      const s = await store.create(null, { ttl: 1000 * k })
      const slow = (await store.get(s.id))!
      await sleep(600 * k)
      expect(await store.get(s.id)).not.toBeNull() // another request: lastAccess persisted
      await sleep(600 * k) // the slow copy's own lastAccess is now 1.2 s old; the store's 0.6 s
      slow.data.set('late', true)
      expect(await store.save(slow)).toBe(true)
      expect((await store.get(s.id))!.data.get('late')).toBe(true)
      const idle = (await store.get(s.id))!
      await sleep(1100 * k)
      idle.data.set('too', 'late')
      expect(await store.save(idle)).toBe(false)
      expect(await store.get(s.id)).toBeNull()
    })

    it('retries are bounded: a writer that always loses gets SessionConflictError and writes nothing', async () => {
      const store = await make()
      const s = await store.create()
      const mine = (await store.get(s.id))!
      const rival = (await store.get(s.id))!
      const p = primitives(store)
      const write = p.writeRecord.bind(store)
      let attempts = 0
      let rivalWrites = 0
      let inside = false
      // Before each of our attempts, the rival saves first; the rebuild-under-lock shortcut is
      // withheld so the store must answer 'conflict' and the retry loop is what is tested.
      p.writeRecord = async (w, condition) => {
        if (!inside && condition.kind === 'version') {
          attempts++
          inside = true
          rival.data.set('rival', ++rivalWrites)
          expect(await store.save(rival)).toBe(true)
          inside = false
        }
        return write(w, condition)
      }
      mine.data.set('mine', true)
      await expect(store.save(mine)).rejects.toBeInstanceOf(SessionConflictError)
      await expect(store.save(mine)).rejects.toMatchObject({ code: 'ERR_SESSION_CONFLICT' })
      // One budget per save, the store's (a lock-free Redis swap has a larger one).
      expect(attempts).toBe(2 * (store as unknown as { saveAttempts: number }).saveAttempts)
      p.writeRecord = write
      const got = (await store.get(s.id))!
      expect(got.data.get('rival')).toBe(rivalWrites)
      expect(got.data.has('mine')).toBe(false)
      // Once the rival stops, the same copy saves with its change re-applied.
      expect(await store.save(mine)).toBe(true)
      expect((await store.get(s.id))!.data.toJSON()).toEqual({ rival: rivalWrites, mine: true })
    })

    it('many concurrent saves of one session in this process each keep their own path', async () => {
      const store = await make()
      const s = await store.create()
      const copies = await Promise.all(Array.from({ length: 6 }, () => store.get(s.id)))
      copies.forEach((c, i) => c!.data.set(`w${i}`, i))
      const results = await Promise.all(copies.map((c) => store.save(c!)))
      expect(results).toEqual(copies.map(() => true))
      expect(Object.keys((await store.get(s.id))!.data.toJSON()).sort()).toEqual(['w0', 'w1', 'w2', 'w3', 'w4', 'w5'])
    })
  })

  describe('sessions built by hand, and ids up to 256 characters', () => {
    it('a session never stored is inserted only if its id is free', async () => {
      const store = await make()
      const taken = await store.create()
      taken.data.set('keep', 1)
      await store.save(taken)
      const clash = new Session(taken.id, null, 60_000)
      clash.data.set('keep', 2)
      expect(await store.save(clash)).toBe(false)
      expect((await store.get(taken.id))!.data.get('keep')).toBe(1)
      const fresh = new Session(generateSessionId(), { identity: 'dave' }, 60_000)
      fresh.data.set('n', 1)
      expect(await store.save(fresh)).toBe(true)
      expect((await store.get(fresh.id))!.data.get('n')).toBe(1)
      // Once stored, the same object saves as a versioned update.
      fresh.data.set('n', 2)
      expect(await store.save(fresh)).toBe(true)
      expect((await store.get(fresh.id))!.data.get('n')).toBe(2)
    })

    it('get, save and delete work with ids chosen by the application', async () => {
      const store = await make()
      for (const id of ['sid-1', '../x', 'é'.repeat(256), '本😀 x']) {
        const s = new Session(id, null, 60_000)
        s.data.set('id', id)
        expect(await store.save(s), id).toBe(true)
        expect((await store.get(id))!.data.get('id')).toBe(id)
        expect(await store.delete(id)).toBe(true)
        expect(await store.get(id)).toBeNull()
      }
      expect(await store.get('x'.repeat(257))).toBeNull()
      expect(await store.delete('x'.repeat(257))).toBe(false)
    })
  })

  describe('touch throttle', () => {
    it('is min(touchAfter, ttl / 2): a session used once per half lifetime never expires, and get says when it persisted', async () => {
      const store = await make({ touchAfter: 60_000 })
      const s = await store.create(null, { ttl: 1000 })
      await sleep(50)
      const early = (await store.get(s.id))!
      expect(persistedTouch(early)).toBe(false) // 50 ms < 500 ms: nothing written
      let persisted = 0
      // 3 s of use every 300 ms, three times the 1 s idle timeout (0.1 wrote only after 60 s).
      for (let i = 0; i < 10; i++) {
        await sleep(300)
        const got = await store.get(s.id)
        expect(got, `request ${i}`).not.toBeNull()
        if (persistedTouch(got!)) persisted++
      }
      expect(persisted).toBeGreaterThanOrEqual(4)
      // Idle for longer than ttl (with room for a loaded machine's late timers): gone.
      await sleep(1500)
      expect(await store.get(s.id)).toBeNull()
    })
  })

  describe('identity index: listSessions and revokeSessions', () => {
    it('lists and revokes by identity: alice x3, bob x1; revoke alice except one removes 2', async () => {
      const store = await make()
      const a1 = await store.create({ identity: 'alice' })
      const a2 = await store.create({ identity: 'alice' })
      const anon = await store.create()
      anon.attachAvatar(new Avatar('alice'))
      expect(await store.save(anon)).toBe(true)
      const b1 = await store.create({ sub: 'bob' })
      const ids = (list: Array<{ id: string }>) => list.map((e) => e.id).sort()
      expect(ids(await store.listSessions('alice'))).toEqual([a1.id, a2.id, anon.id].sort())
      const [info] = await store.listSessions('bob')
      expect(info).toEqual({
        id: b1.id,
        createdAt: b1.meta.createdAt,
        lastAccess: expect.any(Number),
        expiresAt: expect.any(Number),
      })
      expect(info.expiresAt).toBeGreaterThan(Date.now())
      expect(await store.listSessions('nobody')).toEqual([])

      expect(await store.revokeSessions('alice', { except: a2.id })).toBe(2)
      expect(await store.get(a1.id)).toBeNull()
      expect(await store.get(anon.id)).toBeNull()
      expect(await store.get(a2.id)).not.toBeNull()
      expect(await store.get(b1.id)).not.toBeNull()
      expect(ids(await store.listSessions('alice'))).toEqual([a2.id])
      expect(ids(await store.listSessions('bob'))).toEqual([b1.id])
      // A copy of a revoked session read before the revoke cannot come back.
      a1.data.set('late', true)
      expect(await store.save(a1)).toBe(false)
      expect(await store.revokeSessions('alice')).toBe(1)
      expect(await store.listSessions('alice')).toEqual([])
    })

    it('logging in as someone else moves the session to the new identity', async () => {
      const store = await make()
      const s = await store.create({ identity: 'alice' })
      s.attachAvatar(new Avatar('bob'))
      expect(await store.save(s)).toBe(true)
      expect(await store.listSessions('alice')).toEqual([])
      expect((await store.listSessions('bob')).map((e) => e.id)).toEqual([s.id])
      expect(await store.revokeSessions('alice')).toBe(0)
      expect(await store.get(s.id)).not.toBeNull()
    })

    it('entries go with their session: delete, expiry, and the sweep', async () => {
      const store = await make()
      const gone = await store.create({ identity: 'erin' })
      const short = await store.create({ identity: 'erin' }, { ttl: 40 })
      const kept = await store.create({ identity: 'erin' })
      await store.delete(gone.id)
      await sleep(80)
      expect((await store.listSessions('erin')).map((e) => e.id)).toEqual([kept.id])
      expect(await store.get(short.id)).toBeNull()
      await store.delete(kept.id)
      expect(await store.listSessions('erin')).toEqual([])
      // An identity whose sessions all expire unread: the sweep (or the backend's TTL) takes the
      // sessions and their index entries alike.
      await store.create({ identity: 'frank' }, { ttl: 40 })
      await sleep(80)
      await store.purgeExpired()
      if (options.exposedNames) expect(await options.exposedNames(store)).toEqual([])
      expect(await store.listSessions('frank')).toEqual([])
    })

    it('index names hold no identity', async () => {
      const store = await make()
      const identities = ['alice@example.com', 'Bob Example', 'ébène']
      for (const identity of identities) await store.create({ identity })
      const exposed = options.exposedNames ? await options.exposedNames(store) : []
      for (const name of exposed) {
        for (const identity of identities) expect(name.toLowerCase()).not.toContain(identity.toLowerCase())
        expect(name).not.toMatch(/alice|bob|ebene|ébène/i)
      }
      if (options.exposedNames) expect(exposed.length).toBeGreaterThanOrEqual(6)
      for (const identity of identities) expect(await store.listSessions(identity)).toHaveLength(1)
    })

    it('checks its arguments', async () => {
      const store = await make()
      await expect(store.listSessions(42 as never)).rejects.toThrow(TypeError)
      await expect(store.listSessions('')).rejects.toThrow(RangeError)
      await expect(store.revokeSessions('alice', { except: 42 as never })).rejects.toThrow(/options\.except/)
      await expect(store.revokeSessions('alice', null as never)).rejects.toThrow(TypeError)
    })
  })
}
