// One set of option names, checked the same way in every constructor: `ttl` is every store's
// lifetime (`defaultTtl` its deprecated alias), `sweepInterval` every sweep timer's (the manager's
// `cleanupInterval` its deprecated alias), an unknown option is a TypeError naming it, and a
// `secret`/`secrets` key present but unset is an error, never a silent machine-bound key.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ExpressSessionStore } from '../../lib/http/express'
import sealedSession from '../../lib/http/fastify'
import { withSession } from '../../lib/http/fetch'
import { FileSessionStore } from '../../lib/stores/file-store'
import { SessionManager } from '../../lib/manager/manager'
import { MemorySessionStore } from '../../lib/stores/memory-store'
import { sessionMiddleware } from '../../lib/http/middleware'
import { RedisSessionStore } from '../../lib/stores/redis-store'
import { PostgresSessionStore } from '../../lib/stores/postgres-store'
import { generateSessionId } from '../../lib/core/ids'
import { Session } from '../../lib/session/session'
import { SessionExchange, checkSessionOptions } from '../../lib/http/session-core'
import Fastify from 'fastify'

const SECRET = 'an options test secret of 32+ characters'
const dirs: string[] = []
const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!()
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-opt-'))
  dirs.push(d)
  return path.join(d, 'store')
}
const handler = async () => new Response('ok')

// Every public constructor, given extra options on top of valid ones.
const constructors: Array<[string, (extra: Record<string, unknown>) => unknown]> = [
  ['MemorySessionStore', (o) => new MemorySessionStore(o)],
  ['Session', (o) => new Session(generateSessionId(), null, 1000, o)],
  ['FileSessionStore', (o) => new FileSessionStore({ dir: tmp(), secret: SECRET, ...o })],
  ['RedisSessionStore', (o) => new RedisSessionStore({ client: {} as never, secret: SECRET, ...o })],
  ['PostgresSessionStore', (o) => new PostgresSessionStore({ client: {} as never, secret: SECRET, ...o })],
  ['SessionManager', (o) => new SessionManager('options-test', { dir: tmp(), ...o })],
  ['ExpressSessionStore', (o) => new ExpressSessionStore({ store: new MemorySessionStore(), ...o })],
  ['sessionMiddleware', (o) => sessionMiddleware({ store: new MemorySessionStore(), ...o })],
  ['withSession', (o) => withSession({ store: new MemorySessionStore(), ...o }, handler)],
]

describe('option names', () => {
  it('ttl is the lifetime option of every store; defaultTtl is its deprecated alias', async () => {
    const store = new MemorySessionStore({ ttl: 5_000 })
    expect(store.ttl).toBe(5_000)
    expect((await store.create()).meta.ttl).toBe(5_000)
    const files = new FileSessionStore({ dir: tmp(), secret: SECRET, ttl: 7_000, sweepInterval: 0 })
    closers.push(() => files.close())
    expect((await files.create()).meta.ttl).toBe(7_000)
    expect(new MemorySessionStore({ defaultTtl: 9_000 }).ttl).toBe(9_000)
    expect(new MemorySessionStore(4_000).ttl).toBe(4_000)
    expect(() => new MemorySessionStore({ ttl: 1_000, defaultTtl: 2_000 })).toThrow(
      /options\.ttl or options\.defaultTtl/,
    )
    expect(() => new MemorySessionStore({ ttl: -5 })).toThrow(RangeError)
  })

  it('cleanupInterval is the deprecated name of sweepInterval: the same timer, one of the two', async () => {
    const both = () => new SessionManager('d', { dir: tmp(), sweepInterval: 1000, cleanupInterval: 1000 })
    expect(both).toThrow(TypeError)
    expect(both).toThrow('pass options.sweepInterval or options.cleanupInterval (its deprecated name), not both')
    // A bad value is reported under the name it was given.
    expect(() => new SessionManager('d', { dir: tmp(), sweepInterval: -5 })).toThrow(/^options\.sweepInterval /)
    expect(() => new SessionManager('d', { dir: tmp(), cleanupInterval: -5 })).toThrow(/^options\.cleanupInterval /)
    const setSpy = vi.spyOn(globalThis, 'setInterval')
    try {
      for (const options of [{ sweepInterval: 1234 }, { cleanupInterval: 1234 }]) {
        setSpy.mockClear()
        const m = new SessionManager('sweep-alias', { dir: tmp(), ...options })
        await m.init()
        expect(setSpy).toHaveBeenCalledTimes(1)
        expect(setSpy.mock.calls[0][1]).toBe(1234)
        await m.close()
      }
    } finally {
      setSpy.mockRestore()
    }
  })

  it('the HTTP adapters start new sessions with the store ttl', async () => {
    const config = checkSessionOptions({ store: new MemorySessionStore({ ttl: 5_000 }) }, 'test')
    const exchange = await SessionExchange.open(config, undefined)
    exchange.session.data.set('x', 1)
    expect(exchange.cookie(false)).toMatch(/Max-Age=5;/)
  })

  it.each(constructors)('%s refuses an unknown option, naming it', (owner, make) => {
    expect(() => make({ defualtTtl: 1000 })).toThrow(TypeError)
    expect(() => make({ defualtTtl: 1000 })).toThrow(`options.defualtTtl is not an option of ${owner}`)
  })

  it('the Fastify plugin refuses an unknown option, naming it', async () => {
    const app = Fastify()
    app.register(sealedSession, { store: new MemorySessionStore(), rollin: true } as never)
    await expect(app.ready()).rejects.toThrow('options.rollin is not an option of sealedSession')
    await app.close()
  })
})

describe('a secret that is present but unset is an error, never a machine-bound key', () => {
  const keyed: Array<[string, (keys: Record<string, unknown>) => unknown]> = [
    ['FileSessionStore', (k) => new FileSessionStore({ dir: tmp(), ...k })],
    ['RedisSessionStore', (k) => new RedisSessionStore({ client: {} as never, ...k })],
    ['PostgresSessionStore', (k) => new PostgresSessionStore({ client: {} as never, ...k })],
    ['SessionManager', (k) => new SessionManager('options-test', { dir: tmp(), ...k })],
  ]
  it.each(keyed)('%s', (_owner, make) => {
    expect(() => make({ secret: process.env.SEALED_SESSION_SURELY_UNSET })).toThrow(TypeError)
    expect(() => make({ secret: undefined })).toThrow(/options\.secret is undefined: the secret is not set/)
    expect(() => make({ secret: '' })).toThrow(RangeError)
    expect(() => make({ secret: '' })).toThrow(/options\.secret is "": the secret is not set/)
    expect(() => make({ secrets: undefined })).toThrow(/options\.secrets is undefined/)
    expect(() => make({ secrets: [SECRET, undefined] })).toThrow(
      /options\.secrets\[1\] is undefined: that secret is not set/,
    )
    expect(() => make({ secrets: [''] })).toThrow(RangeError)
    expect(() => make({ secret: undefined, secrets: undefined })).toThrow(/options\.secret is undefined/)
  })

  it('an unset key next to a set one only replaces it: { ...defaults, secret: undefined, secrets }', async () => {
    const store = new FileSessionStore({ dir: tmp(), secret: undefined, secrets: [SECRET], sweepInterval: 0 })
    closers.push(() => store.close())
    const s = await store.create({ identity: 'rotated' })
    const reader = new FileSessionStore({ dir: store.dir, secret: SECRET, sweepInterval: 0 })
    closers.push(() => reader.close())
    expect((await reader.get(s.id))?.avatar.identity).toBe('rotated') // the secret, not a machine key
  })

  it('nothing is created on disk when the secret is unset', () => {
    const dir = tmp()
    expect(() => new FileSessionStore({ dir, secret: undefined })).toThrow(TypeError)
    expect(fs.existsSync(dir)).toBe(false)
  })

  it('leaving the key out still means a machine-bound key (where a machine id exists)', async () => {
    const store = new FileSessionStore({ dir: tmp(), sweepInterval: 0 })
    closers.push(() => store.close())
    const s = await store.create({ identity: 'local' })
    expect((await store.get(s.id))?.avatar.identity).toBe('local')
  })
})
