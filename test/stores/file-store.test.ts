// FileSessionStore: the shared contract, plus what only an encrypted file store must show.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'

import { FileSessionStore } from '../../lib/stores/file-store'
import { generateSessionId, storageName } from '../../lib/core/ids'
import { describeStoreContract } from './contract'

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-filestore-'))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
let n = 0
const freshDir = () => path.join(root, `d${n++}`)
const SECRET = 'a file-store test secret, 32+ chars long'
// Stripe lock files (at most 256, reused forever) are not sessions.
function entries(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => !/^stripe-[0-9a-f]{2}\.lock$/.test(n))
}

describeStoreContract(
  'FileSessionStore',
  async (opts) => new FileSessionStore({ dir: freshDir(), secret: SECRET, ...opts }),
  {
    exposedNames: async (store) => entries((store as FileSessionStore).dir),
  },
)

describe('FileSessionStore on disk', () => {
  const stores: FileSessionStore[] = []
  const make = (o: Partial<ConstructorParameters<typeof FileSessionStore>[0]> = {}) => {
    const s = new FileSessionStore({ dir: freshDir(), secret: SECRET, ...o })
    stores.push(s)
    return s
  }
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()))
  })

  it('a session survives a new store on the same directory, and the file holds no plaintext', async () => {
    const a = make()
    const s = await a.create({ identity: 'alice@example.com', tags: ['admin'] })
    s.data.set('cart.items', ['книга', '本'])
    await a.save(s)
    await a.close()
    // The session and alice's identity index, both sealed, neither named after the id or identity.
    const files = entries(a.dir).sort()
    expect(files).toHaveLength(2)
    expect(files).toContain(storageName(s.id))
    // The index entry: named by the keyed hash of the identity and the session's storage name.
    expect(files.find((f) => f !== storageName(s.id))).toBe(
      `ix-${files.find((f) => f.startsWith('ix-'))!.slice(3, 67)}-${storageName(s.id)}`,
    )
    for (const file of files) {
      const raw = fs.readFileSync(path.join(a.dir, file))
      expect(raw.subarray(0, 4).toString()).toBe('SEAL')
      for (const secret of [s.id, 'alice@example.com', 'alice', 'admin', 'книга', '本', 'cart']) {
        expect(raw.includes(Buffer.from(secret))).toBe(false)
        expect(file).not.toContain(secret)
      }
    }
    expect(fs.statSync(path.join(a.dir, files[0])).mode & 0o777).toBe(0o600)
    const b = make({ dir: a.dir })
    const back = await b.get(s.id)
    expect(back?.avatar.identity).toBe('alice@example.com')
    expect(back?.data.get('cart.items')).toEqual(['книга', '本'])
  })

  it('a file renamed to another session, or with one flipped bit, reads as null', async () => {
    const store = make()
    const a = await store.create({ identity: 'a' })
    const b = await store.create({ identity: 'b' })
    const fa = path.join(store.dir, storageName(a.id))
    const fb = path.join(store.dir, storageName(b.id))
    fs.copyFileSync(fa, fb)
    expect(await store.get(b.id)).toBeNull()
    expect((await store.get(a.id))?.avatar.identity).toBe('a')
    const bytes = fs.readFileSync(fa)
    for (const pos of [9, 30, 45, bytes.length - 1]) {
      const bad = Buffer.from(bytes)
      bad[pos] ^= 0x10
      fs.writeFileSync(fa, bad)
      expect(await store.get(a.id)).toBeNull()
    }
  })

  it('a store with another secret or namespace reads the sessions as null', async () => {
    const store = make()
    const s = await store.create({ identity: 'x' })
    expect(await make({ dir: store.dir, secret: 'another secret that is also 32+ chars' }).get(s.id)).toBeNull()
    expect(await make({ dir: store.dir, namespace: 'other' }).get(s.id)).toBeNull()
    expect((await make({ dir: store.dir }).get(s.id))?.id).toBe(s.id)
  })

  it('rotation: sessions sealed with an older secret open, and are re-sealed with the current one', async () => {
    const old = make()
    const s = await old.create({ identity: 'r' })
    const file = path.join(old.dir, storageName(s.id))
    const oldKid = fs.readFileSync(file).subarray(8, 12).toString('hex')
    const rotated = make({
      dir: old.dir,
      secret: undefined,
      secrets: ['the new secret, at least thirty-two chars', SECRET],
    })
    expect((await rotated.get(s.id))?.avatar.identity).toBe('r')
    expect(fs.readFileSync(file).subarray(8, 12).toString('hex')).not.toBe(oldKid)
    expect((await rotated.get(s.id))?.id).toBe(s.id)
  })

  it('hostile ids never touch a file outside the directory', async () => {
    const store = make()
    const outside = path.join(root, 'outside')
    fs.writeFileSync(outside, 'keep me')
    const hostile = [
      '../outside',
      outside,
      '/etc/passwd',
      'a\0b',
      'x'.repeat(10_000),
      '..',
      '.',
      '',
      'é'.repeat(43),
      `${generateSessionId()}/..`,
    ]
    for (const id of hostile) {
      expect(await store.get(id)).toBeNull()
      expect(await store.delete(id)).toBe(false)
    }
    expect(fs.readFileSync(outside, 'utf8')).toBe('keep me')
    expect(entries(store.dir)).toEqual([])
  })

  it('10 000 sessions with half expired: purgeExpired removes exactly the expired half', async () => {
    const store = make({ sweepInterval: 0 })
    const now = Date.now()
    // Half live for an hour, half for a minute; then the clock moves two minutes on.
    const records = Array.from({ length: 10_000 }, (_, i) => ({
      id: generateSessionId(),
      meta: { createdAt: now, lastAccess: now, ttl: i % 2 === 0 ? 60_000 : 3_600_000 },
      auth: null,
      data: { i },
    }))
    expect(await store.restore({ version: 1, sessions: records })).toBe(10_000)
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(now + 120_000)
      expect(await store.purgeExpired()).toBe(5_000)
      expect(await store.purgeExpired()).toBe(0)
    } finally {
      vi.useRealTimers()
    }
    const left = new Set(entries(store.dir))
    expect(left.size).toBe(5_000)
    records.forEach((r, i) => expect(left.has(storageName(r.id))).toBe(i % 2 === 1))
  }, 60_000)

  it('purgeExpired also prunes the identity indexes: the entries of expired sessions go, the others stay', async () => {
    const store = make({ sweepInterval: 0 })
    const now = Date.now()
    const shortA = await store.create({ identity: 'alice' }, { ttl: 60_000 })
    const longA = await store.create({ identity: 'alice' }, { ttl: 3_600_000 })
    const shortB = await store.create({ identity: 'bob' }, { ttl: 60_000 })
    const indexEntries = () => entries(store.dir).filter((n) => n.startsWith('ix-'))
    expect(indexEntries()).toHaveLength(3)
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(now + 120_000)
      expect(await store.purgeExpired()).toBe(2)
      // Only the entry of alice's long session is left.
      expect(indexEntries()).toEqual([expect.stringMatching(new RegExp(`^ix-[0-9a-f]{64}-${storageName(longA.id)}$`))])
      expect(indexEntries().some((n) => n.endsWith(storageName(shortB.id)))).toBe(false)
      expect((await store.listSessions('alice')).map((s) => s.id)).toEqual([longA.id])
      expect(await store.get(shortA.id)).toBeNull()
    } finally {
      vi.useRealTimers()
    }
  })

  it('refuses a session over maxBytes on save, keeping the old file', async () => {
    const store = make({ maxBytes: 2048 })
    const s = await store.create()
    s.data.set('blob', 'x'.repeat(4000))
    await expect(store.save(s)).rejects.toMatchObject({ code: 'ERR_SESSION_TOO_LARGE' })
    expect((await store.get(s.id))?.data.has('blob')).toBe(false)
  })

  it('an unsafe directory rejects every call with ERR_SESSION_UNSAFE_PATH; once fixed, the next call opens it', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir, { mode: 0o777 })
    fs.chmodSync(dir, 0o777)
    // The constructor does no file I/O (the directory is opened on the thread pool).
    const store = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
    await expect(store.create()).rejects.toMatchObject({ code: 'ERR_SESSION_UNSAFE_PATH' })
    await expect(store.get(generateSessionId())).rejects.toMatchObject({ code: 'ERR_SESSION_UNSAFE_PATH' })
    await expect(store.purgeExpired()).rejects.toMatchObject({ code: 'ERR_SESSION_UNSAFE_PATH' })
    expect(entries(dir)).toEqual([]) // nothing was written into it
    fs.chmodSync(dir, 0o700)
    const s = await store.create()
    expect((await store.get(s.id))?.id).toBe(s.id)
    await store.close()
  })

  it('a store closed while its directory is still opening rejects with ERR_SESSION_CLOSED', async () => {
    const store = new FileSessionStore({ dir: freshDir(), secret: SECRET, sweepInterval: 0 })
    await store.close()
    await expect(store.create()).rejects.toMatchObject({ code: 'ERR_SESSION_CLOSED' })
  })

  it('dump passes by a planted unsafe file and keeps every other session', async () => {
    const store = make()
    const good = await store.create({ identity: 'kept' })
    const target = path.join(root, 'planted-target')
    fs.writeFileSync(target, 'x')
    fs.symlinkSync(target, path.join(store.dir, storageName(generateSessionId())))
    expect((await store.dump()).sessions.map((r) => r.id)).toEqual([good.id])
  })

  it('a touch racing a delete from another process does not bring the session back', async () => {
    const a = make({ touchAfter: 0 })
    const b = make({ dir: a.dir, touchAfter: 0 })
    const s = await a.create({ identity: 'gone' })
    await new Promise((r) => setTimeout(r, 5)) // lastAccess now stale: b's get will write back
    // b's get reads the file, then a deletes it before b's touch writes back.
    const files = b as unknown as { readRecord(n: string, now: number): Promise<unknown> }
    const readRecord = files.readRecord.bind(b)
    let raced = false
    files.readRecord = async (n: string, now: number) => {
      const found = await readRecord(n, now)
      if (!raced) {
        raced = true
        await a.delete(s.id)
      }
      return found
    }
    expect(await b.get(s.id)).toBeNull()
    expect(entries(a.dir)).toEqual([])
    expect(await a.get(s.id)).toBeNull()
  })

  it('exposes its timing, which the middleware applies to new sessions', () => {
    const store = make({ defaultTtl: 1234, maxAge: 5678 })
    expect([store.defaultTtl, store.maxAge]).toEqual([1234, 5678])
    expect(make().maxAge).toBeUndefined()
  })

  it.skipIf(process.platform !== 'linux')(
    'close() resolves once the directory is released: with its open or a periodic sweep still on the pool',
    async () => {
      const dir = freshDir()
      // This process's descriptors on the directory or inside it.
      const held = () =>
        fs.readdirSync('/proc/self/fd').filter((fd) => {
          try {
            return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)
          } catch {
            return false // closed meanwhile (the listing's own descriptor)
          }
        })
      // Closed right after construction: the open is still on the pool.
      await new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 }).close()
      expect(held()).toEqual([])
      // Closed while the periodic sweep runs over 2000 files.
      const seeded = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
      const now = Date.now()
      const sessions = Array.from({ length: 2000 }, () => ({
        id: generateSessionId(),
        meta: { createdAt: now, lastAccess: now, ttl: 3_600_000 },
        auth: null,
        data: {},
      }))
      expect(await seeded.restore({ version: 1, sessions })).toBe(2000)
      await seeded.close()
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
      try {
        const store = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 60_000 })
        await store.init()
        vi.advanceTimersByTime(60_000) // the sweep starts
        await store.close()
        expect(held()).toEqual([])
      } finally {
        vi.useRealTimers()
      }
    },
    60_000,
  )

  it('validates its options, naming them', () => {
    expect(() => new FileSessionStore({} as never)).toThrow(/options.dir/)
    expect(() => new FileSessionStore({ dir: freshDir(), namespace: 'a:b' })).toThrow(RangeError)
    expect(() => new FileSessionStore({ dir: freshDir(), maxBytes: 10 })).toThrow(/maxBytes/)
    expect(() => new FileSessionStore({ dir: freshDir(), secret: 'short' })).toThrow(RangeError)
    expect(() => new FileSessionStore({ dir: freshDir(), defaultTtl: -1 })).toThrow(RangeError)
  })

  it('the periodic sweep removes expired files by itself', async () => {
    const store = make({ sweepInterval: 50, defaultTtl: 30 })
    await store.create()
    expect(entries(store.dir)).toHaveLength(1)
    const deadline = Date.now() + 5000
    while (entries(store.dir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(entries(store.dir)).toHaveLength(0)
  })
})
