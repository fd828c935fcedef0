// What console.log (util.inspect) shows of sessions, avatars, bags, SessionData and the
// stores: identity, tags, ISO times, data as a tree, a store's kind and options; never a whole
// session id, a secret, a key or the auth snapshot.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { inspect } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { Avatar } from '../../lib/session/avatar'
import { Bag } from '../../lib/session/bag'
import { FileSessionStore } from '../../lib/stores/file-store'
import { generateSessionId } from '../../lib/core/ids'
import { MemorySessionStore } from '../../lib/stores/memory-store'
import { Session } from '../../lib/session/session'
import { SessionData } from '../../lib/manager/session-data'

const SECRET = 'inspect test secret: never to be printed'
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-inspect-'))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 6)
const show = (value: unknown) => inspect(value, { depth: 10, colors: false, breakLength: Infinity })

describe('util.inspect', () => {
  it('a Session: id prefix only, identity, tags, ISO times, data as a tree; no auth snapshot', () => {
    const id = generateSessionId()
    const s = new Session(id, { sub: 'alice', roles: ['admin', 'editor'], access_token: 'tok-5ec2e7' }, 3_600_000, {
      now: T0,
    })
    s.data.set('cart.items', [1, 2])
    s.data.set('theme', 'dark')
    const out = show(s)
    expect(out).toMatch(/^Session \{/)
    expect(out).toContain(`id: '${id.slice(0, 6)}…'`)
    expect(out).not.toContain(id.slice(0, 12))
    expect(out).toContain("identity: 'alice'")
    expect(out).toContain("tags: [ 'admin', 'editor' ]")
    expect(out).toContain("createdAt: '2026-01-02T03:04:05.006Z'")
    expect(out).toContain("expiresAt: '2026-01-02T04:04:05.006Z'")
    expect(out).toContain("data: { cart: { items: [ 1, 2 ] }, theme: 'dark' }")
    expect(out).toContain("flags: [ 'dirty' ]")
    expect(out).not.toContain('tok-5ec2e7')
    // console.log goes through the same path.
    expect(inspect(s)).toContain("identity: 'alice'")
  })

  it('JSON.stringify of a Session (what JSON loggers call) gives the same view as inspect', () => {
    const id = generateSessionId()
    const s = new Session(id, { sub: 'alice', roles: ['admin'], access_token: 'tok-5ec2e7' }, 3_600_000, {
      now: T0,
      maxAge: 7_200_000,
    })
    s.data.set('cart.items', [1, 2])
    s.avatar.data.set('lang', 'it')
    const view = JSON.parse(JSON.stringify(s))
    expect(view).toEqual({
      id: `${id.slice(0, 6)}…`,
      identity: 'alice',
      tags: ['admin'],
      meta: {
        createdAt: '2026-01-02T03:04:05.006Z',
        lastAccess: '2026-01-02T03:04:05.006Z',
        expiresAt: '2026-01-02T04:04:05.006Z',
        ttl: 3_600_000,
        maxAge: 7_200_000,
      },
      data: { cart: { items: [1, 2] } },
      avatarData: { lang: 'it' },
      flags: ['dirty'],
    })
    expect(show(s)).toBe(`Session ${show(view)}`)
  })

  it('an Avatar, a Bag and SessionData', () => {
    const a = new Avatar('bob', ['member'])
    a.data.set('prefs.lang', 'en')
    expect(show(a)).toBe("Avatar { identity: 'bob', tags: [ 'member' ], data: { prefs: { lang: 'en' } } }")
    expect(show(Bag.fromJSON({ a: 1, b: { c: [true, null] } }))).toBe('Bag { a: 1, b: { c: [ true, null ] } }')
    const d = new SessionData({
      userId: 'u-1',
      userName: 'Dr Zhang',
      eid: 'e-9',
      createdAt: new Date(T0).toISOString(),
      expiresAt: new Date(T0 + 1000).toISOString(),
      data: { ward: 3 },
    })
    const out = show(d)
    expect(out).toMatch(
      /^SessionData \{ userId: 'u-1', userName: 'Dr Zhang', eid: 'e-9', createdAt: '2026-01-02T03:04:05.006Z'/,
    )
    expect(out).toContain('data: { ward: 3 }')
  })

  it('stores show their kind and options, never a key or a session', async () => {
    const mem = new MemorySessionStore({ defaultTtl: 60_000, maxSessions: 10, sweepInterval: 0 })
    const s = await mem.create({ sub: 'carol' })
    expect(show(mem)).toBe(
      "MemorySessionStore { kind: 'memory', ttl: 60000, touchAfter: 60000, maxBytes: 1048576, maxSessions: 10, sweepInterval: 0, size: 1 }",
    )
    expect(show(mem)).not.toContain(s.id.slice(0, 6))
    const dir = path.join(root, 'files')
    const file = new FileSessionStore({ dir, secret: SECRET, namespace: 'shop', sweepInterval: 0 })
    const out = show(file)
    expect(out).toBe(
      `FileSessionStore { kind: 'file', dir: '${dir}', namespace: 'shop', ttl: 3600000, touchAfter: 60000, maxBytes: 1048576 }`,
    )
    expect(out).not.toContain(SECRET.slice(0, 10))
    await Promise.all([mem.close(), file.close()])
    // Nested deeper than the caller's depth: a short marker, not an error.
    expect(inspect({ a: { b: { c: mem } } }, { depth: 2 })).toContain('[MemorySessionStore]')
  })
})
