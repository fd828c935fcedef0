// Every public method answers a wrong-typed argument with a TypeError naming it, the
// stores included (store.get(42) included); a malformed string stays a quiet null
// where an id could be anything.
import { describe, expect, it } from 'vitest'
import { Avatar } from '../../lib/session/avatar'
import { Bag } from '../../lib/session/bag'
import { generateSessionId, storageName } from '../../lib/core/ids'
import { MemorySessionStore } from '../../lib/stores/memory-store'
import { Session } from '../../lib/session/session'

const WRONG: unknown[] = [42, null, undefined, {}, [], Symbol('x'), 1n, () => 'id']

describe('wrong-typed arguments are a TypeError everywhere', () => {
  it('store methods reject them; malformed strings read as null / false', async () => {
    const store = new MemorySessionStore({ sweepInterval: 0 })
    for (const v of WRONG) {
      await expect(store.get(v as never), String(typeof v)).rejects.toThrow(/^id must be a string/)
      await expect(store.delete(v as never)).rejects.toThrow(TypeError)
      await expect(store.save(v as never)).rejects.toThrow(TypeError)
      await expect(store.restore(v as never)).rejects.toThrow(TypeError)
    }
    for (const v of ['', 'x', '../etc/passwd', 'a'.repeat(300)]) {
      expect(await store.get(v)).toBeNull()
      expect(await store.delete(v)).toBe(false)
    }
    await store.close()
  })

  it('Session, Avatar, Bag and storageName', () => {
    const s = new Session(generateSessionId(), null, 60_000)
    for (const v of WRONG.filter((x) => x !== undefined)) {
      if (typeof v !== 'number') {
        expect(() => s.touch(v as never)).toThrow(TypeError)
        expect(() => s.isExpired(v as never)).toThrow(TypeError)
      }
      expect(() => s.withId(v as never)).toThrow(TypeError)
      expect(() => s.attachAvatar(v as never)).toThrow(TypeError)
      expect(() => new Avatar().hasTag(v as never)).toThrow(TypeError)
      expect(() => new Bag().get(v as never)).toThrow(TypeError)
      expect(() => new Bag().set(v as never, 1)).toThrow(TypeError)
      expect(() => storageName(v as never)).toThrow(/^id must be a string/)
    }
  })
})
