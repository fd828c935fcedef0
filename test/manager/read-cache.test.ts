// SessionManager's opt-in validated read cache: getSessionSync reuses the last record only while
// the file and its directory are unchanged, and still checks expiry on every call.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'

import { SessionManager, type SessionManagerOptions } from '../../lib/index'

const SECRET = 'read-cache test secret, thirty-two chars+'
const roots: string[] = []
const open: SessionManager[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()))
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true })
})

function pair(options: SessionManagerOptions = {}): {
  dir: string
  make: (o?: SessionManagerOptions) => SessionManager
} {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-cache-'))
  roots.push(root)
  const dir = path.join(root, 's')
  const make = (o: SessionManagerOptions = {}) => {
    const m = new SessionManager('cache-app', { dir, secret: SECRET, cleanupInterval: 0, ...options, ...o })
    open.push(m)
    return m
  }
  return { dir, make }
}

describe('SessionManager readCache', () => {
  it('a hit returns the same record; off by default', async () => {
    const { make } = pair()
    const cached = make({ readCache: true })
    await cached.login('u', 'e')
    const a = cached.getSessionSync()
    expect(a).not.toBeNull()
    expect(cached.getSessionSync()).toBe(a)
    // Off by default: every call reads the file (strace in test/manager/accounts.test.ts counts
    // the read of a second call); the same text decoded once is reused (the next test).
    expect(make().getSessionSync()?.userId).toBe('u')
  })

  it('without the cache, a file that still holds the same record gives the same frozen object; any change is seen at once', async () => {
    const { make } = pair()
    const reader = make()
    const writer = make()
    await writer.login('first', 'e', { data: { n: 1 } })
    const a = reader.getSessionSync()
    expect(reader.getSessionSync()).toBe(a)
    expect(Object.isFrozen(a?.data)).toBe(true)
    await writer.login('first', 'e', { data: { n: 2 } })
    expect(reader.getSessionSync()?.data).toEqual({ n: 2 })
    await writer.logout()
    expect(reader.getSessionSync()).toBeNull()
    await writer.login('first', 'e', { data: { n: 1 } })
    expect(reader.getSessionSync()?.data).toEqual({ n: 1 })
  })

  it('a write from another manager is seen on the next call', async () => {
    const { make } = pair()
    const reader = make({ readCache: true })
    const writer = make()
    await writer.login('first', 'e')
    expect(reader.getSessionSync()?.userId).toBe('first')
    await writer.login('second', 'e')
    expect(reader.getSessionSync()?.userId).toBe('second')
    await writer.logout()
    expect(reader.getSessionSync()).toBeNull()
  })

  it('an overwrite in place (same size) is detected: tampered, null, file removed', async () => {
    const { make } = pair()
    const m = make({ readCache: true })
    await m.login('u', 'e')
    expect(m.getSessionSync()).not.toBeNull()
    const bytes = fs.readFileSync(m.sessionFile)
    bytes[bytes.length - 1] ^= 1
    fs.writeFileSync(m.sessionFile, bytes) // same inode, same size: only mtime/ctime change
    expect(m.getSessionSync()).toBeNull()
    expect(fs.existsSync(m.sessionFile)).toBe(false)
  })

  it('expiry is checked on every call, cache or not', async () => {
    const { make } = pair()
    const m = make({ readCache: true })
    await m.login('u', 'e', { ttl: 60_000 })
    expect(m.getSessionSync()).not.toBeNull()
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.now() + 120_000)
      expect(m.getSessionSync()).toBeNull()
    } finally {
      vi.useRealTimers()
    }
    expect(fs.existsSync(m.sessionFile)).toBe(false)
  })

  it('a directory made unsafe is treated as without the cache: reads through the checked descriptor, writes refused', async () => {
    const { dir, make } = pair()
    const m = make({ readCache: true })
    await m.login('u', 'e')
    expect(m.getSessionSync()).not.toBeNull()
    fs.chmodSync(dir, 0o770)
    // Reads are not re-checked: only we or root could have changed the mode.
    expect(m.getSessionSync()?.userId).toBe('u')
    await expect(m.login('v', 'e')).rejects.toMatchObject({ code: 'ERR_SESSION_UNSAFE_PATH' })
  })

  it('logout and close clear it; a non-boolean option is a TypeError', async () => {
    const { make } = pair()
    const m = make({ readCache: true })
    await m.login('u', 'e')
    m.getSessionSync()
    await m.logout()
    expect(m.getSessionSync()).toBeNull()
    await m.close()
    expect(() => m.getSessionSync()).toThrow(expect.objectContaining({ code: 'ERR_SESSION_CLOSED' }))
    expect(() => make({ readCache: 'yes' as never })).toThrow(TypeError)
  })

  it('a record opened with an older key is re-sealed, not cached', async () => {
    const { make } = pair()
    const old = make()
    await old.login('u', 'e')
    const rotated = make({
      readCache: true,
      secret: undefined,
      secrets: ['the brand new secret, 32 characters+', SECRET],
    })
    const first = rotated.getSessionSync()
    expect(first?.userId).toBe('u')
    expect(rotated.getSessionSync()).not.toBe(first)
  })
})
