// The `sealed-session` bin, run for real (node bin/sealed-session.js) in
// child processes. Exit codes as docs/api/manager.md documents them: 0 success, 1 negative, 2 usage,
// 3 failure. status and doctor change nothing on disk; stored text is printed escaped.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { SessionManager } from '../../lib/index'
import { needs } from '../helpers/ci'
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

  it('status never removes a session it cannot open (another app name: another key), and exits 3', async () => {
    const dir = freshDir()
    const m = await loggedIn('cli-real', dir)
    const r = await cli(['status', '--app', 'cli-other', '--dir', dir])
    expect(r.code).toBe(3)
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

  it('doctor: 0 with every check ok on a healthy directory; it reports temp files and leaves them', async () => {
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
    expect(r.stdout).toMatch(/ok {4}temp files: 1 \(a writer at work, or one that died/)
    expect(r.stdout).toContain(
      process.env.SEALED_SESSION_CRYPTO === 'system-openssl'
        ? "ok    crypto: system-openssl: the system's libcrypto"
        : `ok    crypto: node-openssl: the OpenSSL the runtime exports (${process.versions.openssl})`,
    )
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual(['.session.enc.0011223344556677.tmp'])
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

/** Every entry of dir (and dir itself) with its kind, size, mode and mtime: what "changed nothing" compares. */
function snapshot(dir: string): string[] {
  const st = (p: string) => {
    const s = fs.lstatSync(p, { bigint: true })
    return `${s.mode}:${s.size}:${s.mtimeNs}:${s.ino}`
  }
  return [
    `. ${st(dir)}`,
    ...fs
      .readdirSync(dir)
      .sort()
      .map((n) => `${n} ${st(path.join(dir, n))}`),
  ]
}

// Any C0 or C1 control, or a bidi control, printed raw.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/

describe('sealed-session CLI: accounts, escapes, read-only commands, failures', () => {
  it('status lists the accounts with the active one marked; switch and logout --user change them', async () => {
    const dir = freshDir()
    const app = 'cli-acc'
    const m = new SessionManager(app, { dir, accounts: true, sweepInterval: 0 })
    await m.login('work', 'eid-w', { userName: 'Work' })
    await m.login('home', 'eid-h')
    const st = await cli(['status', '--app', app, '--dir', dir])
    expect(st.code).toBe(0)
    expect(st.stdout).toContain('logged in: home\n')
    expect(st.stdout).toContain('accounts (2, * active):\n* home until ')
    expect(st.stdout).toMatch(/\n {2}work \(Work\) until /)

    const sw = await cli(['switch', 'work', '--app', app, '--dir', dir])
    expect(sw.code).toBe(0)
    expect(m.getSessionSync()?.userId).toBe('work')
    expect((await cli(['status', '--app', app, '--dir', dir])).stdout).toContain('* work (Work) until ')
    const none = await cli(['switch', 'nobody', '--app', app, '--dir', dir])
    expect(none.code).toBe(1)
    expect(none.stdout).toContain('no account nobody')

    const out = await cli(['logout', '--user', 'home', '--app', app, '--dir', dir])
    expect(out.code).toBe(0)
    expect((await m.accounts()).map((a) => a.userId)).toEqual(['work'])
    expect((await cli(['logout', '--user', 'home', '--app', app, '--dir', dir])).code).toBe(1)
    expect((await cli(['switch', '--app', app])).code).toBe(2)
    expect((await cli(['status', '--user', 'x'])).code).toBe(2)
    await m.close()
  })

  it('status escapes control and bidi characters wherever it prints stored text', async () => {
    const dir = freshDir()
    const app = 'cli-esc'
    const m = new SessionManager(app, { dir, accounts: true, sweepInterval: 0 })
    await m.login('evil\u001b[2J\rlogged in: root\u202e', 'eid', {
      userName: 'name\nuntil: never\u0085\u2066',
    })
    await m.login('other\u200f', 'eid-2', {
      userName: '\u0007bell',
      data: { note: 'C1 \u009b31m bidi \u202e and \\u{1b} literally' },
    })
    const r = await cli(['status', '--app', app, '--dir', dir, '--show-data'])
    expect(r.code).toBe(0)
    expect(r.stdout).not.toMatch(RAW_CONTROL)
    expect(r.stdout).toContain('other\\u{200f} (\\u{7}bell)')
    expect(r.stdout).toContain(
      '  evil\\u{1b}[2J\\u{d}logged in: root\\u{202e} (name\\u{a}until: never\\u{85}\\u{2066}) until',
    )
    expect(r.stdout).toContain('C1 \\u{9b}31m bidi \\u{202e} and \\\\\\\\u{1b} literally')
    // No forged lines: exactly one "logged in:" line and one "until:" line start a line.
    expect(r.stdout.split('\n').filter((l) => l.startsWith('logged in:'))).toHaveLength(1)
    expect(r.stdout.split('\n').filter((l) => l.startsWith('until:'))).toHaveLength(1)
    await m.close()
  })

  it('status and doctor change nothing on disk: same entries, sizes and mtimes, a stale temp file left', async () => {
    const dir = freshDir()
    const app = 'cli-ro'
    const m = new SessionManager(app, { dir, accounts: true, sweepInterval: 0 })
    await m.login('a', 'eid-a')
    await m.login('b', 'eid-b')
    await m.close()
    // A dead writer's temp file (no one holds its lock): opening the directory for writing removes it.
    const temp = path.join(dir, '.session.enc.8899aabbccddeeff.tmp')
    fs.writeFileSync(temp, 'torn', { mode: 0o600 })
    const before = snapshot(dir)
    expect((await cli(['status', '--app', app, '--dir', dir])).code).toBe(0)
    expect((await cli(['status', '--app', 'cli-ro-wrong-key', '--dir', dir])).code).toBe(3)
    expect((await cli(['doctor', '--app', app, '--dir', dir])).code).toBe(0)
    expect((await cli(['doctor', '--app', 'cli-ro-wrong-key', '--dir', dir])).code).toBe(1)
    expect(snapshot(dir)).toEqual(before)
    expect(fs.existsSync(temp)).toBe(true)
    // Whereas a manager opening it does sweep it (the temp file was a real stale one).
    const w = new SessionManager(app, { dir, accounts: true, sweepInterval: 0 })
    await w.init()
    expect(fs.existsSync(temp)).toBe(false)
    await w.close()
  })

  it('exit 3 when the directory cannot be used; doctor names the failing check', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir, { mode: 0o700 })
    fs.chmodSync(dir, 0o777)
    const st = await cli(['status', '--app', 'cli-3', '--dir', dir])
    expect(st.code).toBe(3)
    expect(st.stderr).toContain('writable by group or others')
    const lo = await cli(['logout', '--app', 'cli-3', '--dir', dir])
    expect(lo.code).toBe(3)
    expect(lo.stderr).toContain('writable by group or others')
  })

  it.skipIf(!needs(process.getuid?.() === 0, 'root (to chown a directory to another user)'))(
    'doctor and status on a directory owned by another user say so, not "no directory yet"',
    async () => {
      const dir = freshDir()
      const m = await loggedIn('cli-owner', dir)
      await m.close()
      fs.chownSync(dir, 65534, 65534)
      const before = snapshot(dir)
      const d = await cli(['doctor', '--app', 'cli-owner', '--dir', dir])
      expect(d.code).toBe(1)
      expect(d.stdout).toMatch(/FAIL {2}directory: .*owned by uid 65534/)
      expect(d.stdout).not.toContain('no directory yet')
      expect(d.stdout).toContain(
        'skip  session file: not checked: the directory failed its check; a session.enc is there',
      )
      expect(d.stdout).not.toMatch(/ok {4}session file: none/)
      const s = await cli(['status', '--app', 'cli-owner', '--dir', dir])
      expect(s.code).toBe(3)
      expect(s.stderr).toContain('owned by uid 65534')
      expect(snapshot(dir)).toEqual(before)
    },
  )
})

// A private mount namespace with both machine-id files hidden (bind-mounted /dev/null): the
// CLI run as on a minimal container. Needs root and unshare.
function withoutMachineId(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const hide =
    'mount --bind /dev/null /etc/machine-id && { [ ! -e /var/lib/dbus/machine-id ] || mount --bind /dev/null /var/lib/dbus/machine-id; }'
  const r = spawnSync(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', `${hide} && exec "$0" "$@"`, process.execPath, BIN, ...args],
    { encoding: 'utf8', timeout: 20_000 },
  )
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}
const canHideMachineId =
  process.platform === 'linux' &&
  process.getuid?.() === 0 &&
  withoutMachineId(['--help']).code === 0 &&
  spawnSync('unshare', ['--mount', 'sh', '-c', 'mount --bind /dev/null /etc/machine-id'], { stdio: 'ignore' })
    .status === 0

describe.skipIf(!needs(canHideMachineId, 'root and unshare (to hide /etc/machine-id)'))(
  'sealed-session CLI without a machine id',
  () => {
    it('status says a file is there (exit 3), logout removes it, and nothing tells the user to pass a secret', async () => {
      const dir = freshDir()
      const m = await loggedIn('cli-noid', dir)
      const s = withoutMachineId(['status', '--app', 'cli-noid', '--dir', dir])
      expect(s.code).toBe(3)
      expect(s.stdout).toContain('a session file is there (session.enc, until ')
      expect(s.stderr).toContain('this system has no machine id')
      const d = withoutMachineId(['doctor', '--app', 'cli-noid', '--dir', dir])
      expect(d.code).toBe(1)
      expect(d.stdout).toContain('FAIL  machine id:')
      const out = withoutMachineId(['logout', '--app', 'cli-noid', '--dir', dir])
      expect(out.code).toBe(0)
      expect(fs.existsSync(path.join(dir, 'session.enc'))).toBe(false)
      const none = withoutMachineId(['status', '--app', 'cli-noid', '--dir', dir])
      expect(none.code).toBe(1)
      for (const r of [s, d, out, none]) expect(`${r.stdout}${r.stderr}`).not.toMatch(/secret`|pass a .?secret/)
      await m.close()
    })
  },
)
