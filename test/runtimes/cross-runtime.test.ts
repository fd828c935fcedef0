// One package, three runtimes, the same files: a login written by Node is read by Bun and Deno
// and the reverse (async and sync reads), and a FileSessionStore session crosses between them
// with compare-and-swap saves and revocation. Each runtime runs in its own child process and
// picks its own crypto backend (Node its exported OpenSSL, Bun and Deno the system's).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { needs } from '../helpers/ci'
import { findRedisServer, startRedisServer } from '../helpers/redis-server'
import { requireDist } from '../helpers/dist'
import { autoEnv, collect, FIXTURE, op, runtimeCommand, spawnIn, type RuntimeName } from '../helpers/runtimes'

requireDist()
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-runtimes-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))
let n = 0
const fresh = () => path.join(tmp, `d${n++}`)

const all =
  needs(runtimeCommand('bun') !== null, 'the bun runtime') && needs(runtimeCommand('deno') !== null, 'the deno runtime')
const RUNTIMES: RuntimeName[] = ['node', 'bun', 'deno']
const env = autoEnv()
// Each step starts a runtime process (1-3 s each on a loaded machine).
const STEPS = { timeout: 120_000 }
const SECRET = 'runtime fixture secret, long enough to be a key' // runtime-ops.mjs's

interface Read {
  backend: string
  userId: string | null
  syncUserId: string | null
  data: Record<string, unknown>
}

describe.skipIf(!all)('SessionManager across Node, Bun and Deno', () => {
  for (const writer of RUNTIMES) {
    it(`a login written by ${writer} is read by the other two, async and sync`, STEPS, async () => {
      const dir = fresh()
      const wrote = await op<{ backend: string; userId: string }>(
        writer,
        ['login', 'cross', dir, `${writer}-user`],
        env,
      )
      expect(wrote.backend).toBe(writer === 'node' ? 'node-openssl' : 'system-openssl')
      for (const reader of RUNTIMES.filter((r) => r !== writer)) {
        const r = await op<Read>(reader, ['read', 'cross', dir], env)
        expect(r, reader).toMatchObject({
          userId: `${writer}-user`,
          syncUserId: `${writer}-user`,
          data: { by: `${writer}-user` },
        })
      }
    })
  }
})

describe.skipIf(!all)('the manager lock across runtimes', () => {
  it('Node, Bun and Deno each doing 100 extendSession(1000) at once add exactly 300 000 ms', STEPS, async () => {
    const dir = fresh()
    await op('node', ['login', 'lock-race', dir, 'racer'], env)
    const before = await op<{ expiresAt: number }>('node', ['expires', 'lock-race', dir], env)
    const fixture = path.join(path.dirname(FIXTURE), 'manager-extend.mjs')
    const runs = await Promise.all(
      RUNTIMES.map(async (rt) => {
        const p = spawnIn(rt, [fixture, dir, 'lock-race', SECRET, '100', '1000'], env)
        p.stdin.end()
        const ran = await collect(p)
        expect(ran.code, `${rt}: ${ran.stderr}`).toBe(0)
        return JSON.parse(ran.stdout) as { ok: number }
      }),
    )
    expect(runs.map((r) => r.ok)).toEqual([100, 100, 100])
    const after = await op<{ expiresAt: number }>('deno', ['expires', 'lock-race', dir], env)
    expect(after.expiresAt - before.expiresAt).toBe(300_000)
  })
})

describe.skipIf(!all)('FileSessionStore across Node, Bun and Deno', () => {
  it('a session created by Node is read by Bun, changed by Deno, and the change seen by Node', STEPS, async () => {
    const dir = fresh()
    const { id } = await op<{ id: string }>('node', ['store-create', dir, 'alice', 'from-node'], env)
    expect((await op('bun', ['store-get', dir, id], env)).data).toEqual({ v: 'from-node' })
    expect((await op('deno', ['store-set', dir, id, 'deno', 'yes'], env)).saved).toBe(true)
    expect((await op('node', ['store-get', dir, id], env)).data).toEqual({ v: 'from-node', deno: 'yes' })
  })

  it('compare-and-swap: a stale copy saved by Deno after Bun saved keeps both changes', STEPS, async () => {
    const dir = fresh()
    const { id } = await op<{ id: string }>('bun', ['store-create', dir, 'carol', 'from-bun'], env)
    // Deno reads its copy and waits; Bun writes a newer version meanwhile.
    const deno = spawnIn('deno', [FIXTURE, 'store-hold-set', dir, id, 'deno', 'second'], env)
    const denoDone = collect(deno)
    await new Promise<void>((resolve, reject) => {
      let seen = ''
      deno.stdout.on('data', (d: Buffer) => {
        seen += d.toString()
        if (seen.includes('"ready":true')) resolve()
      })
      deno.on('close', (code) => reject(new Error(`deno exited ${code} before it was ready`)))
    })
    expect((await op('bun', ['store-set', dir, id, 'bun', 'first'], env)).saved).toBe(true)
    deno.stdin.end('go\n')
    const ran = await denoDone
    expect(ran.code, ran.stderr).toBe(0)
    expect(JSON.parse(ran.stdout.trim().split('\n').pop()!)).toMatchObject({ saved: true })
    expect((await op('node', ['store-get', dir, id], env)).data).toEqual({
      v: 'from-bun',
      bun: 'first',
      deno: 'second',
    })
  })

  it('revocation by one runtime holds in the others', STEPS, async () => {
    const dir = fresh()
    const a = await op<{ id: string }>('deno', ['store-create', dir, 'dave', 'one'], env)
    const b = await op<{ id: string }>('node', ['store-create', dir, 'dave', 'two'], env)
    const other = await op<{ id: string }>('bun', ['store-create', dir, 'erin', 'three'], env)
    expect((await op('bun', ['store-revoke', dir, 'dave'], env)).revoked).toBe(2)
    for (const rt of RUNTIMES) {
      expect((await op(rt, ['store-get', dir, a.id], env)).data, rt).toBeNull()
      expect((await op(rt, ['store-get', dir, b.id], env)).data, rt).toBeNull()
    }
    expect((await op('deno', ['store-get', dir, other.id], env)).data).toEqual({ v: 'three' })
  })
})

// A cookie jar of one: the session cookie the server last set.
function cookieFrom(res: Response, previous: string | null): string | null {
  const set = res.headers.get('set-cookie')
  return set === null ? previous : set.split(';')[0]
}

describe.skipIf(!all)('withSession (sealed-session/fetch) under Bun.serve and Deno.serve', () => {
  for (const rt of ['bun', 'deno'] as const) {
    it(
      `${rt}: a visitor's session persists across requests, and a login in it is revocable from Node`,
      STEPS,
      async () => {
        const dir = fresh()
        const server = spawnIn(rt, [path.join(path.dirname(FIXTURE), 'runtime-serve.mjs'), dir], env)
        server.stdin.end()
        const exited = collect(server)
        try {
          const port = await new Promise<number>((resolve, reject) => {
            let seen = ''
            server.stdout.on('data', (d: Buffer) => {
              seen += d.toString()
              const m = /"port":(\d+)/.exec(seen)
              if (m) resolve(Number(m[1]))
            })
            server.on('close', (code) => reject(new Error(`${rt} server exited ${code}`)))
          })
          const base = `http://127.0.0.1:${port}`
          let cookie: string | null = null
          const get = async () => {
            const res = await fetch(`${base}/`, { headers: cookie ? { cookie } : {} })
            cookie = cookieFrom(res, cookie)
            return (await res.json()) as { visits: number; user: string | null; backend: string }
          }
          expect(await get()).toEqual({ visits: 1, user: null, backend: 'system-openssl' })
          expect(await get()).toMatchObject({ visits: 2 })
          const login = await fetch(`${base}/login?name=frank`, { method: 'POST', headers: { cookie: cookie! } })
          expect(login.status).toBe(200)
          cookie = cookieFrom(login, cookie)
          expect(await get()).toMatchObject({ visits: 3, user: 'frank' })
          // Node, on the same directory, ends frank's sessions: the server's next read is a new visitor.
          expect((await op('node', ['store-revoke', dir, 'frank'], env)).revoked).toBe(1)
          expect(await get()).toMatchObject({ visits: 1, user: null })
        } finally {
          server.kill('SIGTERM')
          await exited
        }
      },
    )
  }
})

describe.skipIf(!all || !needs(findRedisServer() !== null, 'redis-server'))(
  'RedisSessionStore across Node, Bun and Deno',
  () => {
    it('a session created by Node is read and changed by Bun, read and revoked by Deno', STEPS, async () => {
      const redis = await startRedisServer()
      try {
        const url = redis.url
        const { id } = await op<{ id: string }>('node', ['store-create', url, 'grace', 'from-node'], env)
        expect((await op('bun', ['store-get', url, id], env)).data).toEqual({ v: 'from-node' })
        expect((await op('bun', ['store-set', url, id, 'bun', 'yes'], env)).saved).toBe(true)
        expect((await op('deno', ['store-get', url, id], env)).data).toEqual({ v: 'from-node', bun: 'yes' })
        expect((await op('deno', ['store-revoke', url, 'grace'], env)).revoked).toBe(1)
        for (const rt of RUNTIMES) expect((await op(rt, ['store-get', url, id], env)).data, rt).toBeNull()
      } finally {
        await redis.stop()
      }
    })
  },
)
