// The identity part of the SessionStore contract: every identity a session can have is one that
// listSessions/revokeSessions can reach ("anonymous" and numeric ids included), claims that no
// revocation could reach are refused at create, and a login with keepData: false takes nothing
// from before it into the stored session, even what another request added meanwhile.
// describeStoreContract runs it for every store (memory, files, Redis).
import { describe, expect, it } from 'vitest'
import { Avatar } from '../../lib/session/avatar'
import type { SessionStore } from '../../lib/stores/store'
import type { StoreFactoryOptions } from './contract'

export function describeIdentityContract(make: (opts?: StoreFactoryOptions) => Promise<SessionStore>): void {
  describe('identities revocation can reach', () => {
    it('a user named "anonymous" is listed and revoked; an anonymous visitor never is', async () => {
      const store = await make()
      const named = await store.create({ username: 'anonymous' })
      expect(named.avatar.isAnonymous).toBe(false)
      // A session once logged in as "anonymous", now logged in as nobody: not that user's any more.
      const visitor = await store.create({ sub: 'anonymous' })
      visitor.attachAvatar(new Avatar())
      expect(await store.save(visitor)).toBe(true)
      expect((await store.listSessions('anonymous')).map((s) => s.id)).toEqual([named.id])
      expect(await store.revokeSessions('anonymous')).toBe(1)
      expect(await store.get(named.id)).toBeNull()
      expect(await store.get(visitor.id)).not.toBeNull()
    })

    it('a numeric identity claim is its decimal string: listed and revoked under it', async () => {
      const store = await make()
      const s = await store.create({ identity: 42, tags: ['admin'] })
      expect(s.avatar.identity).toBe('42')
      expect(s.avatar.hasTag('admin')).toBe(true)
      expect((await store.get(s.id))!.avatar.identity).toBe('42')
      expect((await store.listSessions('42')).map((x) => x.id)).toEqual([s.id])
      expect(await store.revokeSessions('42')).toBe(1)
      expect(await store.get(s.id)).toBeNull()
    })

    it('create refuses a claim no revocation could reach, naming it, and stores nothing', async () => {
      const store = await make()
      await expect(store.create({ identity: { id: 42 }, tags: ['admin'] })).rejects.toThrow(/auth\.identity/)
      await expect(store.create({ sub: true })).rejects.toThrow(TypeError)
      await expect(store.create({ sub: 'bob\uD800' })).rejects.toThrow(/auth\.sub.*lone surrogate/)
      expect((await store.dump()).sessions).toEqual([])
    })

    it('a lone surrogate is refused by listSessions and revokeSessions; the U+FFFD user keeps its entries', async () => {
      const store = await make()
      const s = await store.create({ sub: 'bob\uFFFD' })
      // Same UTF-8 bytes, so the same index: listing it as someone else's would prune it.
      await expect(store.listSessions('bob\uD800')).rejects.toThrow(TypeError)
      await expect(store.revokeSessions('bob\uD800')).rejects.toThrow(/identity/)
      expect((await store.listSessions('bob\uFFFD')).map((x) => x.id)).toEqual([s.id])
      expect(await store.get(s.id)).not.toBeNull()
    })
  })

  describe('attachAvatar with keepData: false', () => {
    it('the saved session holds only what this copy set after the login, not a key another request added meanwhile', async () => {
      const store = await make()
      const s = await store.create()
      s.data.set('cart', 1)
      expect(await store.save(s)).toBe(true)
      const a = (await store.get(s.id))!
      const b = (await store.get(s.id))!
      b.data.set('csrf', 'planted-before-login')
      expect(await store.save(b)).toBe(true)
      a.attachAvatar(new Avatar('alice'), { keepData: false })
      a.data.set('fresh', 1)
      expect(await store.save(a)).toBe(true)
      const stored = (await store.get(s.id))!
      expect(stored.avatar.identity).toBe('alice')
      expect(stored.data.toJSON()).toEqual({ fresh: 1 })
      expect(a.data.toJSON()).toEqual({ fresh: 1 })
      // Later saves of that copy merge as usual again.
      const c = (await store.get(s.id))!
      c.data.set('theme', 'dark')
      expect(await store.save(c)).toBe(true)
      a.data.set('fresh', 2)
      expect(await store.save(a)).toBe(true)
      expect((await store.get(s.id))!.data.toJSON()).toEqual({ fresh: 2, theme: 'dark' })
    })
  })
}
