// The `sealed-session` bin, run for real (node bin/sealed-session.js) in
// child processes. Exit codes as docs/api/manager.md documents them: 0 success, 1 negative, 2 usage.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { SessionManager } from '../../lib/index'
import { requireDist } from '../helpers/dist'
import { ROOT, runNode, type Ran } from '../helpers/run-node'

const BIN = path.join(ROOT, 'bin', 'sealed-session.js')
let root: string

beforeAll(() => {
  requireDist()
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-cli-'))
})
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  return runNode([BIN, ...args], { env, timeoutMs: 20_000 })
}

let n = 0
const freshDir = () => path.join(root, `d${n++}`)

async function loggedIn(app: string, dir: string): Promise<SessionManager> {
  const m = new SessionManager(app, { dir, cleanupInterval: 0 })
  await m.login('alice', 'eid-1', { userName: 'Alice', data: { theme: 'dark', secretNote: 'not-by-default' } })
  return m
}

describe('sealed-session CLI', () => {
  it('usage errors exit 2 with the usage on stderr', async () => {
    for (const args of [
      [],
      ['frobnicate'],
      ['status', '--app'],
      ['status', '--bogus'],
      ['logout', '--show-data'],
      ['status', '--app', '../x'],
      ['doctor', '--key-source', 'tpm'],
      ['status', 'extra'],
    ]) {
      const r = await cli(args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toContain('Usage: sealed-session')
      expect(r.stdout).toBe('')
    }
    const help = await cli(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('Usage: sealed-session')
  })

  it('status: 1 when nobody is logged in, 0 with who and until when; data only with --show-data', async () => {
    const dir = freshDir()
    const none = await cli(['status', '--app', 'cli-app', '--dir', dir])
    expect(none.code).toBe(1)
    expect(none.stdout).toContain('not logged in')
    expect(fs.existsSync(dir)).toBe(false) // status creates nothing

    const m = await loggedIn('cli-app', dir)
    const s = (await m.getSession())!
    const r = await cli(['status', '--app', 'cli-app', '--dir', dir])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('logged in: alice (Alice)')
    expect(r.stdout).toContain(`until: ${s.expiresAt}`)
    expect(r.stdout).not.toContain('not-by-default')
    const withData = await cli(['status', '--app', 'cli-app', '--dir', dir, '--show-data'])
    expect(withData.code).toBe(0)
    expect(withData.stdout).toContain('not-by-default')
    await m.close()
  })

  it('status never removes a session it cannot open (another app name: another key)', async () => {
    const dir = freshDir()
    const m = await loggedIn('cli-real', dir)
    const r = await cli(['status', '--app', 'cli-other', '--dir', dir])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('cannot be opened')
    expect((await m.getSession())?.userId).toBe('alice')
    await m.close()
  })

  it('status with the default directory finds what a manager with default options wrote', async () => {
    const env = { ...process.env }
    delete env.XDG_RUNTIME_DIR
    const app = `cli-default-${process.pid}`
    const saved = process.env.XDG_RUNTIME_DIR
    delete process.env.XDG_RUNTIME_DIR
    const m = new SessionManager(app, { cleanupInterval: 0 })
    if (saved !== undefined) process.env.XDG_RUNTIME_DIR = saved
    try {
      await m.login('bob', 'eid')
      const r = await cli(['status', '--app', app], env)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain('logged in: bob')
      const out = await cli(['logout', '--app', app], env)
      expect(out.code).toBe(0)
    } finally {
      await m.close()
      fs.rmSync(m.sessionDir, { recursive: true, force: true })
    }
  })

  it('logout: 0 and the file is gone, then 1', async () => {
    const dir = freshDir()
    const m = await loggedIn('cli-logout', dir)
    const r = await cli(['logout', '--app', 'cli-logout', '--dir', dir])
    expect(r.code).toBe(0)
    expect(fs.existsSync(path.join(dir, 'session.enc'))).toBe(false)
    expect(await m.getSession()).toBeNull()
    const again = await cli(['logout', '--app', 'cli-logout', '--dir', dir])
    expect(again.code).toBe(1)
    expect(again.stdout).toContain('no session')
    await m.close()
  })

  it('doctor: 0 with every check ok on a healthy directory, and it removes stale temp files', async () => {
    const dir = freshDir()
    const m = await loggedIn('cli-doc', dir)
    fs.writeFileSync(path.join(dir, '.session.enc.0011223344556677.tmp'), 'torn', { mode: 0o600 })
    const r = await cli(['doctor', '--app', 'cli-doc', '--dir', dir])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split('\n')
    for (const check of ['directory', 'machine id', 'crypto', 'addon', 'keychain', 'temp files', 'session file']) {
      expect(
        lines.some((l) => l.startsWith(`ok    ${check}:`)),
        check,
      ).toBe(true)
    }
    expect(r.stdout).toContain('1 stale temp file(s) removed')
    expect(r.stdout).toContain(
      process.env.SEALED_SESSION_CRYPTO === 'system-openssl'
        ? "ok    crypto: system-openssl: the system's libcrypto"
        : `ok    crypto: node-openssl: the OpenSSL the runtime exports (${process.versions.openssl})`,
    )
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
    await m.close()
  })

  it('doctor: names the crypto backend SEALED_SESSION_CRYPTO forces, and fails (1) on one that cannot be had', async () => {
    const dir = freshDir()
    const sys = await cli(['doctor', '--app', 'cli-crypto', '--dir', dir], {
      ...process.env,
      SEALED_SESSION_CRYPTO: 'system-openssl',
    })
    expect(sys.code).toBe(0)
    expect(sys.stdout).toContain("ok    crypto: system-openssl: the system's libcrypto, loaded at run time")
    const bad = await cli(['doctor', '--app', 'cli-crypto', '--dir', dir], {
      ...process.env,
      SEALED_SESSION_CRYPTO: 'rot13',
    })
    expect(bad.code).toBe(1)
    expect(bad.stderr).toBe('')
    const line = bad.stdout.split('\n').find((l) => l.startsWith('FAIL  crypto:'))
    expect(line).toContain("SEALED_SESSION_CRYPTO='rot13' is not a crypto backend")
    expect(line).toContain('fix: ')
  })

  it('doctor: 1 when a check fails, the failing line naming its fix', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir, { mode: 0o700 })
    fs.chmodSync(dir, 0o777)
    const r = await cli(['doctor', '--app', 'cli-bad', '--dir', dir])
    expect(r.code).toBe(1)
    const bad = r.stdout.split('\n').find((l) => l.startsWith('FAIL  directory:'))
    expect(bad).toBeDefined()
    expect(bad).toContain('writable by group or others')
    expect(bad).toContain(`fix: remove ${dir}`)

    // A session file this key cannot open fails too (and is left alone).
    const dir2 = freshDir()
    const m = await loggedIn('cli-doc-a', dir2)
    const r2 = await cli(['doctor', '--app', 'cli-doc-b', '--dir', dir2])
    expect(r2.code).toBe(1)
    expect(r2.stdout).toMatch(/FAIL {2}session file: .*fix: /)
    expect((await m.getSession())?.userId).toBe('alice')
    await m.close()
  })
})
