// SessionManager: one persisted, machine-bound login per app.
// Every test works in its own fresh temp directory; only the "defaults" test names the default
// location, and it never writes there. Child-process fixtures (test/fixtures/manager-*.mjs) load
// the built package from dist/ (`npm test` runs build:ts first).
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  SessionClosedError,
  SessionData,
  SessionManager,
  SessionSecurityError,
  type SessionManagerOptions,
} from '../../lib/index'
import { hkdfKey, jsOpen, jsSeal, keyId } from '../helpers/envelope-js'
import { needs } from '../helpers/ci'
import { requireDist } from '../helpers/dist'
import { windowsMachineGuid, windowsUserSid } from '../helpers/windows-ids'

const ROOT = path.join(__dirname, '..', '..')
const FIXTURES = path.join(__dirname, '..', 'fixtures')
const SECRET = 'a shared test secret of more than thirty-two characters'
const OTHER_SECRET = 'another test secret, also longer than thirty-two characters'
const MACHINE_ID_FILE = '/etc/machine-id'
const IS_WINDOWS = process.platform === 'win32'
const HAS_MACHINE_ID = needs(IS_WINDOWS || fs.existsSync(MACHINE_ID_FILE), MACHINE_ID_FILE)
const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id'
// Windows has no boot id file (bindToBoot's Windows source is tested where it is read).
const HAS_BOOT_ID = !IS_WINDOWS && needs(fs.existsSync(BOOT_ID_FILE), 'the boot id')
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0
const SHM = '/dev/shm'
const HAS_SHM = needs(fs.existsSync(SHM) && fs.statfsSync(SHM).type === 0x01021994, 'a tmpfs at /dev/shm')

// ---------------------------------------------------------------------------------------------
// helpers

const tmpRoots: string[] = []
const managers: SessionManager[] = []
let savedUmask: number | null = null

afterEach(async () => {
  for (const m of managers.splice(0)) await m.close()
  if (savedUmask !== null) process.umask(savedUmask)
  savedUmask = null
  for (const dir of tmpRoots.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

/** A fresh temp root; the manager's dir is a not-yet-existing subdirectory of it. */
function tmpRoot(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-mgr-'))
  tmpRoots.push(dir)
  return dir
}

function sessionsDir(): string {
  return path.join(tmpRoot(), 'sessions')
}

function spyLogger() {
  return { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
}

function manager(appName: string, options: SessionManagerOptions = {}): SessionManager {
  const m = new SessionManager(appName, { sweepInterval: 0, ...options })
  managers.push(m)
  return m
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function mode(p: string): number {
  return fs.statSync(p).mode & 0o777
}

interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs `node <fixture> ...args`; kills it (and reports signal SIGKILL) after timeoutMs. */
// Under an emulator (scripts/platform-tests.mjs: wine, qemu) a child takes seconds to start.
const SLOW = Number(process.env.PLATFORM_TIMEOUT_SCALE ?? 1)

function runFixture(fixture: string, args: string[], timeoutMs = 10_000): Promise<RunResult> {
  timeoutMs *= SLOW
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(FIXTURES, fixture), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
}

function parseChild(r: RunResult): Record<string, unknown> {
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  return JSON.parse(r.stdout) as Record<string, unknown>
}

// Envelope v1 (docs/security.md#the-envelope-format-v1) in plain node:crypto, independent of the addon (test/helpers).
const HEADER = 40
const TAG = 16

function machineKey(appName: string, bootId = ''): Buffer {
  // Windows: MachineGuid, and the user's SID as the uid.
  if (IS_WINDOWS) return hkdfKey(windowsMachineGuid(), 'manager', appName, windowsUserSid(), bootId)
  const machineId = fs.readFileSync(MACHINE_ID_FILE, 'ascii').trim()
  return hkdfKey(machineId, 'manager', appName, String(process.getuid!()), bootId)
}

function secretKey(appName: string, secret: string): Buffer {
  return hkdfKey(Buffer.from(secret, 'utf8'), 'manager', appName, '', '')
}

function seal(
  key: Buffer,
  plaintext: string,
  context: string,
  createdAt: number,
  expiresAt: number,
  flags = 0,
): Buffer {
  return jsSeal({ key, plaintext, context, createdAt, expiresAt, flags })
}

function open(key: Buffer, envelope: Buffer, context: string): string {
  return jsOpen(key, envelope, context).toString('utf8')
}

function headerOf(file: string) {
  const b = fs.readFileSync(file)
  return {
    magic: b.subarray(0, 4).toString('latin1'),
    version: b[4],
    flags: b[5],
    reserved: b.readUInt16BE(6),
    keyId: b.subarray(8, 12).toString('hex'),
    createdAt: Number(b.readBigUInt64BE(12)),
    expiresAt: Number(b.readBigUInt64BE(20)),
    length: b.length,
  }
}

/** After a read returned null: the file is gone, exactly one warning, no error log. */
function expectDiscarded(logger: ReturnType<typeof spyLogger>, file: string) {
  expect(fs.existsSync(file)).toBe(false)
  expect(logger.warn).toHaveBeenCalledTimes(1)
  expect(logger.error).not.toHaveBeenCalled()
}

beforeAll(requireDist)

// ---------------------------------------------------------------------------------------------

/** Runs fn with XDG_RUNTIME_DIR set to value (undefined: unset), restoring it after. */
function withRuntimeDir<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env.XDG_RUNTIME_DIR
  if (value === undefined) delete process.env.XDG_RUNTIME_DIR
  else process.env.XDG_RUNTIME_DIR = value
  try {
    return fn()
  } finally {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR
    else process.env.XDG_RUNTIME_DIR = saved
  }
}

/** A private (0700) directory on a tmpfs, as XDG_RUNTIME_DIR is. */
function tmpfsRoot(): string {
  const dir = fs.mkdtempSync(path.join(SHM, 'ss-xdg-'))
  fs.chmodSync(dir, 0o700)
  tmpRoots.push(dir)
  return dir
}

describe('SessionManager: defaults and readable properties', () => {
  it('defaults to <os.tmpdir()>/.<appName>_session-<uid>/session.enc without XDG_RUNTIME_DIR, 8 h, and creates nothing when constructed', () => {
    const app = `ss-mgr-default-${process.pid}-${Date.now()}`
    const m = withRuntimeDir(undefined, () => new SessionManager(app))
    managers.push(m)
    expect(m.appName).toBe(app)
    expect(m.sessionDir).toBe(path.join(os.tmpdir(), `.${app}_session-${process.getuid!()}`))
    expect(m.sessionFile).toBe(path.join(m.sessionDir, 'session.enc'))
    expect(m.sessionFile.endsWith('session.enc')).toBe(true)
    expect(m.ttl).toBe(8 * 3_600_000)
    expect(fs.existsSync(m.sessionDir)).toBe(false)

    const d = withRuntimeDir(undefined, () => new SessionManager())
    managers.push(d)
    expect(d.appName).toBe('sealed-session')
    expect(d.sessionDir).toBe(path.join(os.tmpdir(), `.sealed-session_session-${process.getuid!()}`))
  })

  it.skipIf(!HAS_SHM)('uses $XDG_RUNTIME_DIR/<appName> when that directory is ours, 0700 and in memory', async () => {
    const runtime = tmpfsRoot()
    const m = withRuntimeDir(runtime, () => new SessionManager('xdg-app', { sweepInterval: 0 }))
    managers.push(m)
    expect(m.sessionDir).toBe(path.join(runtime, 'xdg-app'))
    await m.login('u', 'e')
    expect(fs.existsSync(path.join(runtime, 'xdg-app', 'session.enc'))).toBe(true)
  })

  it('falls back to the temp directory when XDG_RUNTIME_DIR is not private, not in memory or not absolute', () => {
    const fallback = path.join(os.tmpdir(), `.xdg-fallback_session-${process.getuid!()}`)
    const open = HAS_SHM ? tmpfsRoot() : tmpRoot()
    fs.chmodSync(open, 0o755)
    const onDisk = tmpRoot() // /tmp here is not a tmpfs: a runtime dir must be cleared at reboot
    fs.chmodSync(onDisk, 0o700)
    const onDiskIsTmpfs = fs.statfsSync(onDisk).type === 0x01021994
    for (const value of [open, 'relative/dir', '', ...(onDiskIsTmpfs ? [] : [onDisk])]) {
      const m = withRuntimeDir(value, () => new SessionManager('xdg-fallback', { sweepInterval: 0 }))
      managers.push(m)
      expect(m.sessionDir, `XDG_RUNTIME_DIR=${value}`).toBe(fallback)
    }
  })

  it('a squatted default directory throws SessionSecurityError naming the path and both ways out', async () => {
    const app = `ss-squat-${process.pid}-${Date.now()}`
    const m = withRuntimeDir(undefined, () => new SessionManager(app, { sweepInterval: 0 }))
    managers.push(m)
    // Another user got there first: as root, a directory of uid 65534; otherwise one that
    // others can write (both are refused the same way).
    fs.mkdirSync(m.sessionDir, { mode: 0o700 })
    tmpRoots.push(m.sessionDir)
    if (IS_ROOT) fs.chownSync(m.sessionDir, 65534, 65534)
    else fs.chmodSync(m.sessionDir, 0o777)
    const err = await m.login('u', 'e').then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SessionSecurityError)
    const message = (err as Error).message
    expect(message).toContain(m.sessionDir)
    expect(message).toContain('option dir')
    expect(message).toContain(`remove ${m.sessionDir}`)
    expect(() => m.getSessionSync()).toThrow(SessionSecurityError)
    expect(fs.readdirSync(m.sessionDir)).toEqual([])
    // An explicit dir that is unsafe says nothing about the default.
    const explicit = manager('squat-explicit', { dir: m.sessionDir })
    const e2 = await explicit.login('u', 'e').then(
      () => null,
      (e: unknown) => e,
    )
    expect(e2).toBeInstanceOf(SessionSecurityError)
    expect((e2 as Error).message).not.toContain('default session directory')
  })

  it('takes ttl and dir from options', () => {
    const dir = sessionsDir()
    const m = manager('opts-app', { dir, ttl: 60_000 })
    expect(m.ttl).toBe(60_000)
    expect(m.sessionDir).toBe(dir)
    expect(m.sessionFile).toBe(path.join(dir, 'session.enc'))
  })
})

describe('SessionManager: login and read back', () => {
  it('login returns the record and getSession / getSessionSync read it back', async () => {
    const m = manager('read-app', { dir: sessionsDir() })
    const before = Date.now()
    const s = await m.login('user-1', 'dr_zhang', { userName: '张医生', ttl: 60_000, data: { ward: 'B3', n: [1, 2] } })
    expect(s).toBeInstanceOf(SessionData)
    expect(s.userId).toBe('user-1')
    expect(s.userName).toBe('张医生')
    expect(s.eid).toBe('dr_zhang')
    expect(s.data).toEqual({ ward: 'B3', n: [1, 2] })
    const created = Date.parse(s.createdAt)
    expect(created).toBeGreaterThanOrEqual(before)
    expect(created).toBeLessThanOrEqual(Date.now())
    expect(Date.parse(s.expiresAt) - created).toBe(60_000)
    expect(s.createdAt).toBe(new Date(created).toISOString())

    expect((await m.getSession())?.toJSON()).toEqual(s.toJSON())
    expect(m.getSessionSync()?.toJSON()).toEqual(s.toJSON())
    expect(SessionData.fromJSON(JSON.parse(JSON.stringify(s))).toJSON()).toEqual(s.toJSON())
    expect(await m.getUserId()).toBe('user-1')
    expect(await m.isLoggedIn()).toBe(true)
    expect(m.isLoggedInSync()).toBe(true)

    // The header carries the record's times.
    const h = headerOf(m.sessionFile)
    expect(h.createdAt).toBe(created)
    expect(h.expiresAt).toBe(Date.parse(s.expiresAt))
  })

  it('userName defaults to null, ttl to the manager ttl, and a second login replaces the first', async () => {
    const m = manager('replace-app', { dir: sessionsDir(), ttl: 120_000 })
    const first = await m.login('first', 'e1')
    expect(first.userName).toBeNull()
    expect(first.data).toEqual({})
    expect(first.expiresAtMs - Date.parse(first.createdAt)).toBe(120_000)
    await m.login('second', 'e2', { userName: 'Second' })
    const s = await m.getSession()
    expect(s?.userId).toBe('second')
    expect(s?.userName).toBe('Second')
    expect(fs.readdirSync(m.sessionDir).filter((n) => !n.endsWith('.lock'))).toEqual(['session.enc'])
  })

  it('nothing stored: getSession null, getUserId null, isLoggedIn false, logout false', async () => {
    const m = manager('empty-app', { dir: sessionsDir() })
    expect(await m.getSession()).toBeNull()
    expect(m.getSessionSync()).toBeNull()
    expect(await m.getUserId()).toBeNull()
    expect(await m.isLoggedIn()).toBe(false)
    expect(m.isLoggedInSync()).toBe(false)
    expect(await m.logout()).toBe(false)
  })

  it('logout removes the session: true, then false', async () => {
    const logger = spyLogger()
    const m = manager('logout-app', { dir: sessionsDir(), logger })
    await m.login('u', 'e')
    expect(await m.logout()).toBe(true)
    expect(fs.existsSync(m.sessionFile)).toBe(false)
    expect(await m.logout()).toBe(false)
    expect(await m.getSession()).toBeNull()
    expect(await m.isLoggedIn()).toBe(false)
    expect(m.isLoggedInSync()).toBe(false)
    expect(await m.getUserId()).toBeNull()
    expect(logger.warn).not.toHaveBeenCalled()
  })
})

describe('SessionManager: across processes', () => {
  it('a machine-bound login is read by a fresh process, by getSessionSync at start-up and by getSession', async () => {
    const dir = sessionsDir()
    const m = manager('xproc-app', { dir })
    const s = await m.login('user-42', 'dr_zhang', { userName: '张医生', data: { role: 'doctor' } })
    const out = parseChild(await runFixture('manager-read.mjs', [dir, 'xproc-app']))
    expect(out.pid).not.toBe(process.pid)
    expect(out.sync).toEqual(s.toJSON())
    expect(out.async).toEqual(s.toJSON())
    expect(out.loggedInSync).toBe(true)
    expect(out.loggedIn).toBe(true)
    expect(out.userId).toBe('user-42')

    // And a logout here is seen there.
    expect(await m.logout()).toBe(true)
    const after = parseChild(await runFixture('manager-read.mjs', [dir, 'xproc-app']))
    expect(after.sync).toBeNull()
    expect(after.async).toBeNull()
    expect(after.loggedIn).toBe(false)
  })

  it('a login with a secret is read by a fresh process with the same secret', async () => {
    const dir = sessionsDir()
    const m = manager('xproc-secret', { dir, secret: SECRET })
    const s = await m.login('u-secret', 'e-secret')
    const out = parseChild(await runFixture('manager-read.mjs', [dir, 'xproc-secret', SECRET]))
    expect(out.sync).toEqual(s.toJSON())
    expect(out.async).toEqual(s.toJSON())
  })

  it('4 processes doing 100 extendSession(1000) each add exactly 400 000 ms', async () => {
    const dir = sessionsDir()
    const app = 'extend-race'
    const m = manager(app, { dir, secret: SECRET })
    const s = await m.login('racer', 'e', { ttl: 3_600_000 })
    const runs = await Promise.all(
      [0, 1, 2, 3].map(() => runFixture('manager-extend.mjs', [dir, app, SECRET, '100', '1000'], 12_000)),
    )
    for (const r of runs) expect(parseChild(r).ok).toBe(100)
    const after = await m.getSession()
    expect(after).not.toBeNull()
    expect(after!.expiresAtMs - s.expiresAtMs).toBe(400_000)
    expect(headerOf(m.sessionFile).expiresAt).toBe(s.expiresAtMs + 400_000)
    expect(after!.createdAt).toBe(s.createdAt)
  })

  it('the cleanup timer is unref()ed: a process that logs in and never closes exits promptly', async () => {
    const dir = sessionsDir()
    const r = await runFixture('manager-login.mjs', [dir, 'unref-app'], 5_000)
    expect(r.signal).toBeNull() // not killed by the timeout
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout).userId).toBe('child-user')
    expect(r.ms).toBeLessThan(5_000 * SLOW)
    const m = manager('unref-app', { dir })
    expect((await m.getSession())?.userId).toBe('child-user')
  })
})

describe('SessionManager: the file on disk', () => {
  it.each([0, 0o022, 0o077])('is 0600 in a 0700 directory under umask %o', async (umask) => {
    savedUmask = process.umask(umask)
    const dir = sessionsDir()
    const m = manager('mode-app', { dir })
    await m.login('u', 'e')
    expect(mode(dir)).toBe(0o700)
    expect(mode(m.sessionFile)).toBe(0o600)
    expect(fs.statSync(m.sessionFile).uid).toBe(process.getuid!())
    // A rewrite (extend) keeps the mode too.
    expect(await m.extendSession(1000)).toBe(true)
    expect(mode(m.sessionFile)).toBe(0o600)
  })

  it('starts with SEAL, version 1, and holds none of the user’s strings in clear', async () => {
    const m = manager('clear-app', { dir: sessionsDir() })
    const userId = 'user-id-7f3a9c'
    const eid = 'dr_zhang_eid'
    const data = { secretNote: 'value-in-data-91b2', ward: '心内科' }
    await m.login(userId, eid, { userName: '张医生', data })
    const bytes = fs.readFileSync(m.sessionFile)
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('SEAL')
    expect(bytes[4]).toBe(1)
    expect(bytes[5]).toBe(0)
    expect(bytes.readUInt16BE(6)).toBe(0)
    for (const plain of [userId, eid, '张医生', 'value-in-data-91b2', '心内科', 'secretNote', 'userId', 'dr_zhang']) {
      expect(bytes.includes(Buffer.from(plain, 'utf8')), plain).toBe(false)
      expect(bytes.includes(Buffer.from(plain, 'utf16le')), plain).toBe(false)
    }
    // Nonces are fresh: the same login twice gives different bytes.
    await m.login(userId, eid, { userName: '张医生', data })
    expect(fs.readFileSync(m.sessionFile).subarray(28).equals(bytes.subarray(28))).toBe(false)
  })

  it('a login does not write through a session.enc symlink', async () => {
    const root = tmpRoot()
    const dir = path.join(root, 'sessions')
    const victim = path.join(root, 'victim.txt')
    fs.writeFileSync(victim, 'keep me')
    const m = manager('link-file-app', { dir })
    await m.init()
    fs.symlinkSync(victim, m.sessionFile)
    await m.login('u', 'e')
    expect(fs.readFileSync(victim, 'utf8')).toBe('keep me')
    expect(fs.lstatSync(m.sessionFile).isFile()).toBe(true)
    expect((await m.getSession())?.userId).toBe('u')
  })
  it('a session.enc symlink is refused on read and its target is left alone', async () => {
    const root = tmpRoot()
    const m = manager('link-read-app', { dir: path.join(root, 'sessions') })
    await m.login('u', 'e')
    const elsewhere = path.join(root, 'elsewhere.enc')
    fs.renameSync(m.sessionFile, elsewhere)
    fs.symlinkSync(elsewhere, m.sessionFile)
    await expect(m.getSession()).rejects.toMatchObject({ code: 'ERR_SESSION_UNSAFE_PATH' })
    expect(() => m.getSessionSync()).toThrow(SessionSecurityError)
    expect(fs.existsSync(elsewhere)).toBe(true)
  })
})

describe('SessionManager: files it cannot open are removed, warned about once, never thrown', () => {
  it('a file copied into another app’s directory reads as null and is removed', async () => {
    const a = manager('app-a', { dir: sessionsDir() })
    await a.login('u', 'e', { userName: '张医生' })
    const logger = spyLogger()
    const b = manager('app-b', { dir: sessionsDir(), logger })
    await b.init()
    fs.copyFileSync(a.sessionFile, b.sessionFile)
    fs.chmodSync(b.sessionFile, 0o600)
    expect(await b.getSession()).toBeNull()
    expectDiscarded(logger, b.sessionFile)
    expect(fs.existsSync(a.sessionFile)).toBe(true) // the original is untouched
  })

  it('the same, with a shared secret, through the sync twin', async () => {
    const a = manager('app-a', { dir: sessionsDir(), secret: SECRET })
    await a.login('u', 'e')
    const logger = spyLogger()
    const b = manager('app-b', { dir: sessionsDir(), secret: SECRET, logger })
    await b.init()
    fs.copyFileSync(a.sessionFile, b.sessionFile)
    expect(b.getSessionSync()).toBeNull()
    expectDiscarded(logger, b.sessionFile)
  })

  it('a manager with another secret reads null and removes the file', async () => {
    const dir = sessionsDir()
    await manager('secret-app', { dir, secret: SECRET }).login('u', 'e')
    const logger = spyLogger()
    const other = manager('secret-app', { dir, secret: OTHER_SECRET, logger })
    expect(await other.isLoggedIn()).toBe(false)
    expectDiscarded(logger, other.sessionFile)
  })

  it('a machine-bound manager does not open a file sealed with a secret', async () => {
    const dir = sessionsDir()
    await manager('mixed-app', { dir, secret: SECRET }).login('u', 'e')
    const logger = spyLogger()
    const machine = manager('mixed-app', { dir, logger })
    expect(await machine.getUserId()).toBeNull()
    expectDiscarded(logger, machine.sessionFile)
  })

  // header: magic, version, flags, reserved, key id, created-at, expires-at (a bit that moves
  // it later, so it stays unexpired), nonce; then body and tag.
  const positions: Array<[string, (len: number) => number]> = [
    ['magic', () => 0],
    ['version', () => 4],
    ['flags', () => 5],
    ['reserved', () => 7],
    ['key id', () => 9],
    ['created-at', () => 17],
    ['expires-at', () => 21],
    ['nonce', () => 33],
    ['first body byte', () => 40],
    ['last body byte', (len) => len - 17],
    ['first tag byte', (len) => len - 16],
    ['last tag byte', (len) => len - 1],
  ]
  it.each(positions)('one flipped byte (%s) reads as null, file removed, one warning', async (_name, at) => {
    const dir = sessionsDir()
    const logger = spyLogger()
    const m = manager('flip-app', { dir, logger })
    await m.login('u', 'e', { userName: '张医生', data: { a: 1 } })
    const bytes = fs.readFileSync(m.sessionFile)
    bytes[at(bytes.length)] ^= 0x01
    fs.writeFileSync(m.sessionFile, bytes)
    await expect(m.getSession()).resolves.toBeNull()
    expectDiscarded(logger, m.sessionFile)
    expect(await m.getSession()).toBeNull()
    expect(logger.warn).toHaveBeenCalledTimes(1) // no second warning once it is gone
  })

  it.each([
    ['flipped tag, sync twin', (b: Buffer) => ((b[b.length - 1] ^= 0x80), b)],
    ['truncated to 55 bytes', (b: Buffer) => b.subarray(0, 55)],
    ['empty file', () => Buffer.alloc(0)],
    ['not an envelope', () => Buffer.from('{"userId":"u"}')],
  ])('%s: null, removed, one warning', async (_name, mutate) => {
    const logger = spyLogger()
    const m = manager('broken-app', { dir: sessionsDir(), logger })
    await m.login('u', 'e')
    fs.writeFileSync(m.sessionFile, mutate(fs.readFileSync(m.sessionFile)))
    expect(m.getSessionSync()).toBeNull()
    expectDiscarded(logger, m.sessionFile)
  })
})

describe('SessionManager: expiry and extension', () => {
  it('an expired session reads as null, its file is removed and a debug line logged', async () => {
    const logger = spyLogger()
    const m = manager('expiry-app', { dir: sessionsDir(), logger })
    // Date frozen, then moved past the expiry: no dependence on how fast this machine is.
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.now())
      const s = await m.login('u', 'e', { ttl: 50 })
      expect(await m.isLoggedIn()).toBe(true)
      vi.setSystemTime(s.expiresAtMs + 30)
      expect(fs.existsSync(m.sessionFile)).toBe(true) // nothing swept it (sweepInterval 0)
      expect(await m.getSession()).toBeNull()
      expect(fs.existsSync(m.sessionFile)).toBe(false)
      expect(logger.debug).toHaveBeenCalled()
      expect(logger.warn).not.toHaveBeenCalled()
      expect(await m.extendSession(60_000)).toBe(false) // too late to extend
    } finally {
      vi.useRealTimers()
    }
  })

  it('the sync twin sees expiry too', async () => {
    const m = manager('expiry-sync', { dir: sessionsDir() })
    await m.login('u', 'e', { ttl: 50 })
    await sleep(80)
    expect(m.isLoggedInSync()).toBe(false)
    expect(fs.existsSync(m.sessionFile)).toBe(false)
  })

  it('extendSession adds to the current expiry, not to now', async () => {
    const m = manager('extend-app', { dir: sessionsDir() })
    const s = await m.login('u', 'e', { ttl: 3_600_000, userName: '张医生', data: { k: 'v' } })
    await sleep(20) // "now + ms" would now differ from "expiry + ms"
    expect(await m.extendSession(12_345)).toBe(true)
    const a = await m.getSession()
    expect(a!.expiresAtMs).toBe(s.expiresAtMs + 12_345)
    expect(headerOf(m.sessionFile).expiresAt).toBe(s.expiresAtMs + 12_345)
    expect(await m.extendSession(1)).toBe(true)
    const b = await m.getSession()
    expect(b!.expiresAtMs).toBe(s.expiresAtMs + 12_346)
    // Everything else is kept.
    expect({ ...b!.toJSON(), expiresAt: s.expiresAt }).toEqual(s.toJSON())
  })

  it('extendSession revives a short session past its original end', async () => {
    // The clock is frozen while the short session is extended (a loaded machine could let
    // 60 ms pass first), then moved past its original end.
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.now())
      const m = manager('extend-short', { dir: sessionsDir() })
      const s = await m.login('u', 'e', { ttl: 60 })
      expect(await m.extendSession(60_000)).toBe(true)
      vi.setSystemTime(s.expiresAtMs + 1000)
      expect(await m.getUserId()).toBe('u')
    } finally {
      vi.useRealTimers()
    }
  })

  it('extendSession with no session is false and writes nothing', async () => {
    const m = manager('extend-none', { dir: sessionsDir() })
    expect(await m.extendSession(1000)).toBe(false)
    expect(fs.existsSync(m.sessionFile)).toBe(false)
  })

  it('the cleanup timer removes an expired file without any call', async () => {
    // Wait for the event asserted (the sweep's report), not for the file to vanish: the file
    // goes before the report is logged.
    let reported!: (details: unknown) => void
    const report = new Promise((resolve) => (reported = resolve))
    const logger = spyLogger()
    logger.debug.mockImplementation((message: string, details: unknown) => {
      if (message === 'expired session removed by cleanup') reported(details)
    })
    const m = manager('sweep-app', { dir: sessionsDir(), sweepInterval: 50, logger })
    await m.login('u', 'e', { ttl: 30 })
    expect(await report).toEqual({ removed: 1 })
    expect(fs.existsSync(m.sessionFile)).toBe(false)
  })

  it('close() stops the cleanup timer', async () => {
    const dir = sessionsDir()
    const setSpy = vi.spyOn(globalThis, 'setInterval')
    const clearSpy = vi.spyOn(globalThis, 'clearInterval')
    let handle: NodeJS.Timeout
    try {
      const sweeper = new SessionManager('sweep-stop', { dir, sweepInterval: 20 })
      await sweeper.init()
      expect(setSpy).toHaveBeenCalledTimes(1)
      handle = setSpy.mock.results[0].value as NodeJS.Timeout
      expect(handle.hasRef()).toBe(false) // unref()ed
      await sweeper.close()
      expect(clearSpy).toHaveBeenCalledWith(handle)
    } finally {
      setSpy.mockRestore()
      clearSpy.mockRestore()
    }
    const writer = manager('sweep-stop', { dir })
    await writer.login('u', 'e', { ttl: 10 })
    await sleep(150)
    expect(fs.existsSync(writer.sessionFile)).toBe(true)
  })
})

describe('SessionManager: bad arguments name the argument', () => {
  const bad = (fn: () => unknown) => {
    try {
      fn()
    } catch (err) {
      return err
    }
    throw new Error('did not throw')
  }

  /** Construct and init: options checked either eagerly or at the first use are accepted. */
  async function setupError(appName: unknown, options: unknown): Promise<unknown> {
    try {
      const m = new SessionManager(appName as string, options as SessionManagerOptions)
      managers.push(m)
      await m.init()
    } catch (err) {
      return err
    }
    throw new Error('did not throw')
  }

  it.each([
    ['', RangeError],
    ['.', RangeError],
    ['..', RangeError],
    ['a/b', RangeError],
    ['../escape', RangeError],
    ['a\\b', RangeError],
    ['a\0b', RangeError],
    [42, TypeError],
    [null, TypeError],
    [{}, TypeError],
  ])('appName %j', (appName, Err) => {
    const err = bad(() => new SessionManager(appName as string, { dir: sessionsDir() }))
    expect(err).toBeInstanceOf(Err)
    expect((err as Error).message).toMatch(/appName/)
  })

  it.each([
    [-1, RangeError],
    [0, RangeError],
    [NaN, RangeError],
    [Infinity, RangeError],
    [1.5, RangeError],
    ['1h', TypeError],
  ])('ttl %s in the constructor and in login', async (ttl, Err) => {
    const ctor = bad(() => new SessionManager('ttl-app', { dir: sessionsDir(), ttl: ttl as number }))
    expect(ctor).toBeInstanceOf(Err)
    expect((ctor as Error).message).toMatch(/ttl/)
    const m = manager('ttl-app', { dir: sessionsDir() })
    const err = await m.login('u', 'e', { ttl: ttl as number }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Err)
    expect((err as Error).message).toMatch(/options\.ttl/)
    expect(fs.existsSync(m.sessionFile)).toBe(false)
  })

  it('login(42) and login("u", 42)', async () => {
    const m = manager('args-app', { dir: sessionsDir() })
    const e1 = await m.login(42 as unknown as string, 'e').catch((e: unknown) => e)
    expect(e1).toBeInstanceOf(TypeError)
    expect((e1 as Error).message).toMatch(/userId/)
    const e2 = await m.login('u', 42 as unknown as string).catch((e: unknown) => e)
    expect(e2).toBeInstanceOf(TypeError)
    expect((e2 as Error).message).toMatch(/eid/)
    const e3 = await m.login('u', 'e', { userName: 7 as unknown as string }).catch((e: unknown) => e)
    expect(e3).toBeInstanceOf(TypeError)
    expect((e3 as Error).message).toMatch(/userName/)
    expect(fs.existsSync(m.sessionFile)).toBe(false)
  })

  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  it.each([
    ['a function value', { f: () => 1 }, /options\.data\.f/],
    ['a BigInt', { n: 10n }, /options\.data\.n/],
    ['a cycle', cyclic, /options\.data/],
    ['a Date value', { when: new Date() }, /options\.data\.when/],
    ['a Date as data', new Date(), /options\.data/],
    ['undefined value', { u: undefined }, /options\.data\.u/],
    ['NaN value', { x: NaN }, /options\.data\.x/],
    ['a Map', { m: new Map() }, /options\.data\.m/],
  ])('non-JSON data (%s) is a TypeError', async (_name, data, re) => {
    const m = manager('data-app', { dir: sessionsDir() })
    const err = await m.login('u', 'e', { data: data as Record<string, unknown> }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TypeError)
    expect((err as Error).message).toMatch(re)
    expect(fs.existsSync(m.sessionFile)).toBe(false)
  })

  it.each([
    [-1, RangeError],
    [NaN, RangeError],
    [0, RangeError],
    [Infinity, RangeError],
    ['1000', TypeError],
  ])('extendSession(%s)', async (ms, Err) => {
    const m = manager('extend-args', { dir: sessionsDir() })
    const s = await m.login('u', 'e')
    const err = await m.extendSession(ms as number).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Err)
    expect((err as Error).message).toMatch(/extraMs/)
    expect((await m.getSession())!.expiresAt).toBe(s.expiresAt)
  })

  it('a secret shorter than 32 is a RangeError naming options.secret', async () => {
    const err = await setupError('secret-app', { dir: sessionsDir(), secret: 'x'.repeat(31) })
    expect(err).toBeInstanceOf(RangeError)
    expect((err as Error).message).toMatch(/options\.secret/)
    const bytes = await setupError('secret-app', { dir: sessionsDir(), secret: new Uint8Array(16) })
    expect(bytes).toBeInstanceOf(RangeError)
    expect((bytes as Error).message).toMatch(/options\.secret/)
  })

  it('secret and secrets together is a TypeError', async () => {
    const err = await setupError('secret-app', { dir: sessionsDir(), secret: SECRET, secrets: [SECRET] })
    expect(err).toBeInstanceOf(TypeError)
    expect((err as Error).message).toMatch(/secret/)
  })

  it.each([
    ['a number', 42],
    ['a string', 'console'],
    ['an object missing error', { debug() {}, info() {}, warn() {} }],
    ['an object with a non-function warn', { debug() {}, info() {}, warn: 1, error() {} }],
  ])('a bad logger (%s) is a TypeError', (_name, logger) => {
    const err = bad(() => new SessionManager('log-app', { dir: sessionsDir(), logger: logger as never }))
    expect(err).toBeInstanceOf(TypeError)
    expect((err as Error).message).toMatch(/options\.logger/)
  })

  it('a bad dir, sweepInterval or options object is rejected', () => {
    expect(() => new SessionManager('d', { dir: 42 as unknown as string })).toThrow(/options\.dir/)
    expect(() => new SessionManager('d', { dir: 'a\0b' })).toThrow(/options\.dir/)
    expect(() => new SessionManager('d', { dir: sessionsDir(), sweepInterval: -5 })).toThrow(RangeError)
    expect(() => new SessionManager('d', 'opts' as never)).toThrow(TypeError)
  })
})

describe('SessionManager: unsafe directories are refused', () => {
  async function expectUnsafe(dir: string) {
    const m = manager('unsafe-app', { dir })
    const err = await m.login('u', 'e').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SessionSecurityError)
    expect(err).toMatchObject({ code: 'ERR_SESSION_UNSAFE_PATH' })
    const sync = (() => {
      try {
        m.getSessionSync()
      } catch (e) {
        return e
      }
      return null
    })()
    expect(sync).toBeInstanceOf(SessionSecurityError)
    await expect(m.getSession()).rejects.toMatchObject({ code: 'ERR_SESSION_UNSAFE_PATH' })
  }

  it('a symlink to a private directory', async () => {
    const root = tmpRoot()
    const target = path.join(root, 'private')
    fs.mkdirSync(target, { mode: 0o700 })
    const link = path.join(root, 'link')
    fs.symlinkSync(target, link)
    await expectUnsafe(link)
    expect(fs.readdirSync(target)).toEqual([])
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true)
  })

  it.each([0o770, 0o777, 0o702])('a directory with mode %o', async (m) => {
    const dir = path.join(tmpRoot(), 'shared')
    fs.mkdirSync(dir)
    fs.chmodSync(dir, m)
    await expectUnsafe(dir)
    expect(fs.readdirSync(dir)).toEqual([])
    expect(mode(dir)).toBe(m) // not silently "fixed"
  })

  it.skipIf(!needs(IS_ROOT, 'root (to chown)'))('a directory owned by another user (uid 65534)', async () => {
    const dir = path.join(tmpRoot(), 'nobody')
    fs.mkdirSync(dir, { mode: 0o700 })
    fs.chownSync(dir, 65534, 65534)
    await expectUnsafe(dir)
    expect(fs.readdirSync(dir)).toEqual([])
  })
})

describe('SessionManager: close and dispose', () => {
  it('every call after close() is a SessionClosedError; the file stays for the next manager', async () => {
    const dir = sessionsDir()
    const m = new SessionManager('close-app', { dir })
    const s = await m.login('u', 'e', { userName: '张医生' })
    await m.close()
    await m.close() // idempotent
    const calls: Array<[string, () => unknown]> = [
      ['init', () => m.init()],
      ['login', () => m.login('u', 'e')],
      ['logout', () => m.logout()],
      ['getSession', () => m.getSession()],
      ['getUserId', () => m.getUserId()],
      ['isLoggedIn', () => m.isLoggedIn()],
      ['extendSession', () => m.extendSession(1000)],
      ['getSessionSync', () => m.getSessionSync()],
      ['isLoggedInSync', () => m.isLoggedInSync()],
    ]
    for (const [name, call] of calls) {
      let err: unknown
      try {
        await call()
      } catch (e) {
        err = e
      }
      expect(err, name).toBeInstanceOf(SessionClosedError)
      expect((err as SessionClosedError).code, name).toBe('ERR_SESSION_CLOSED')
    }
    expect(fs.existsSync(m.sessionFile)).toBe(true)
    const next = manager('close-app', { dir })
    expect((await next.getSession())?.toJSON()).toEqual(s.toJSON())
  })

  it('await using closes the manager', async () => {
    const dir = sessionsDir()
    let kept: SessionManager
    {
      await using m = new SessionManager('dispose-app', { dir })
      kept = m
      await m.login('u', 'e')
    }
    await expect(kept.getSession()).rejects.toBeInstanceOf(SessionClosedError)
    expect(fs.existsSync(path.join(dir, 'session.enc'))).toBe(true)
  })

  it('Symbol.asyncDispose closes the manager', async () => {
    const m = new SessionManager('dispose-app', { dir: sessionsDir() })
    await m.init()
    await m[Symbol.asyncDispose]()
    expect(() => m.getSessionSync()).toThrow(SessionClosedError)
  })
})

describe('SessionManager: bindToBoot', () => {
  it('works, and sets the envelope flags byte to 1', async () => {
    const dir = sessionsDir()
    const m = manager('boot-app', { dir, bindToBoot: true })
    const s = await m.login('u', 'e', { userName: '张医生' })
    expect((await m.getSession())?.toJSON()).toEqual(s.toJSON())
    expect(m.getSessionSync()?.userId).toBe('u')
    const bytes = fs.readFileSync(m.sessionFile)
    expect(bytes[5]).toBe(1)
    // A second boot-bound manager of the same app reads it as well.
    expect((await manager('boot-app', { dir, bindToBoot: true }).getSession())?.userId).toBe('u')
  })

  it('a file written without bindToBoot is not readable by a bindToBoot manager (other key)', async () => {
    const dir = sessionsDir()
    const plain = manager('boot-mix', { dir })
    await plain.login('u', 'e')
    const plainKid = headerOf(plain.sessionFile).keyId
    const logger = spyLogger()
    const boot = manager('boot-mix', { dir, bindToBoot: true, logger })
    expect(await boot.getSession()).toBeNull()
    expectDiscarded(logger, boot.sessionFile)
    await boot.login('u', 'e')
    expect(headerOf(boot.sessionFile).keyId).not.toBe(plainKid)
  })
})

describe.skipIf(!HAS_MACHINE_ID)('SessionManager: keys as docs/security.md#keys pins them', () => {
  it('reads a session.enc sealed with node:crypto under the HKDF machine-bound key', async () => {
    const app = 'spec-key-app'
    const dir = sessionsDir()
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    fs.chmodSync(dir, 0o700)
    const now = Date.now()
    const record = {
      userId: 'spec-user',
      userName: '张医生',
      eid: 'spec-eid',
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 600_000).toISOString(),
      data: { from: 'node:crypto' },
    }
    const envelope = seal(machineKey(app), JSON.stringify(record), `manager:${app}`, now, now + 600_000)
    fs.writeFileSync(path.join(dir, 'session.enc'), envelope, { mode: 0o600 })
    const logger = spyLogger()
    const m = manager(app, { dir, logger })
    expect((await m.getSession())?.toJSON()).toEqual(record)
    expect(m.getSessionSync()?.toJSON()).toEqual(record)
    expect(logger.warn).not.toHaveBeenCalled()
  })

  it('seals with that key: key id, context and record as specified', async () => {
    const app = 'spec-key-write'
    const m = manager(app, { dir: sessionsDir() })
    const s = await m.login('u', 'e', { userName: '张医生' })
    const key = machineKey(app)
    const bytes = fs.readFileSync(m.sessionFile)
    const h = headerOf(m.sessionFile)
    expect(h).toMatchObject({ magic: 'SEAL', version: 1, flags: 0, reserved: 0, keyId: keyId(key).toString('hex') })
    expect(h.length).toBe(HEADER + Buffer.byteLength(JSON.stringify(s)) + TAG)
    expect(JSON.parse(open(key, bytes, `manager:${app}`))).toEqual(s.toJSON())
    expect(() => open(key, bytes, 'manager:other')).toThrow()
  })

  it.skipIf(!HAS_BOOT_ID)('bindToBoot appends the boot id to the HKDF info', async () => {
    const bootFile = BOOT_ID_FILE
    const app = 'spec-boot'
    const m = manager(app, { dir: sessionsDir(), bindToBoot: true })
    const s = await m.login('u', 'e')
    const key = machineKey(app, fs.readFileSync(bootFile, 'ascii').trim())
    expect(headerOf(m.sessionFile).keyId).toBe(keyId(key).toString('hex'))
    expect(JSON.parse(open(key, fs.readFileSync(m.sessionFile), `manager:${app}`))).toEqual(s.toJSON())
  })

  it('with a secret the key is HKDF(secret) with an empty uid', async () => {
    const app = 'spec-secret'
    const m = manager(app, { dir: sessionsDir(), secret: SECRET })
    const s = await m.login('u', 'e')
    const key = secretKey(app, SECRET)
    expect(headerOf(m.sessionFile).keyId).toBe(keyId(key).toString('hex'))
    expect(JSON.parse(open(key, fs.readFileSync(m.sessionFile), `manager:${app}`))).toEqual(s.toJSON())
  })

  it('the right key under another app’s context is refused (AAD), removed, one warning', async () => {
    const app = 'spec-aad'
    const dir = sessionsDir()
    const logger = spyLogger()
    const m = manager(app, { dir, logger })
    await m.init()
    const now = Date.now()
    const record = {
      userId: 'u',
      userName: null,
      eid: 'e',
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 60_000).toISOString(),
      data: {},
    }
    fs.writeFileSync(
      m.sessionFile,
      seal(machineKey(app), JSON.stringify(record), 'manager:someone-else', now, now + 60_000),
      { mode: 0o600 },
    )
    expect(await m.getSession()).toBeNull()
    expectDiscarded(logger, m.sessionFile)
  })
})

describe('SessionManager: maxBytes', () => {
  it('caps the record at options.maxBytes, and the too-large error names the option', async () => {
    const m = manager('max-app', { dir: sessionsDir(), maxBytes: 2048 })
    expect(m.maxBytes).toBe(2048)
    await m.login('u', 'e', { data: { s: 'x'.repeat(1500) } })
    const err = await m.login('u', 'e', { data: { s: 'x'.repeat(3000) } }).then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toMatchObject({ name: 'SessionTooLargeError', code: 'ERR_SESSION_TOO_LARGE' })
    expect((err as Error).message).toContain('maxBytes')
    expect((err as Error).message).toContain('2048')
    expect((await m.getSession())?.data).toEqual({ s: 'x'.repeat(1500) }) // the old one stays
    // A larger cap takes it; the default is 1 MiB.
    const big = manager('max-app-big', { dir: sessionsDir(), maxBytes: 8192 })
    await big.login('u', 'e', { data: { s: 'x'.repeat(3000) } })
    expect(manager('max-default', { dir: sessionsDir() }).maxBytes).toBe(1024 * 1024)
  })

  it('rejects a bad maxBytes naming the option', () => {
    expect(() => new SessionManager('a', { maxBytes: '1' as never })).toThrow(/options\.maxBytes/)
    expect(() => new SessionManager('a', { maxBytes: 10 })).toThrow(RangeError)
  })
})

describe('SessionManager: discards are never silent', () => {
  it('with no logger, a tampered file emits one process warning (SEALED_SESSION_DISCARDED) naming the file and why', async () => {
    const dir = sessionsDir()
    const writer = manager('warn-app', { dir })
    await writer.login('u', 'e')
    const bytes = fs.readFileSync(writer.sessionFile)
    bytes[bytes.length - 1] ^= 1
    fs.writeFileSync(writer.sessionFile, bytes)
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      const reader = manager('warn-app', { dir })
      expect(await reader.getSession()).toBeNull()
      // process warnings are emitted on the next tick
      await new Promise((r) => setImmediate(r))
    } finally {
      process.off('warning', onWarning)
    }
    const ours = warnings.filter((w) => (w as { code?: string }).code === 'SEALED_SESSION_DISCARDED')
    expect(ours).toHaveLength(1)
    expect(ours[0].message).toContain(writer.sessionFile)
    expect(ours[0].message).toContain('ERR_SESSION_TAMPERED')
    expect(fs.existsSync(writer.sessionFile)).toBe(false)
  })

  it('with a logger, the logger gets it and no process warning is emitted', async () => {
    const dir = sessionsDir()
    const writer = manager('warn-logger', { dir, secret: SECRET })
    await writer.login('u', 'e')
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    const logger = spyLogger()
    try {
      const reader = manager('warn-logger', { dir, secret: OTHER_SECRET, logger })
      expect(reader.getSessionSync()).toBeNull()
      await new Promise((r) => setImmediate(r))
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings.filter((w) => (w as { code?: string }).code === 'SEALED_SESSION_DISCARDED')).toEqual([])
    expectDiscarded(logger, writer.sessionFile)
  })
})

describe('SessionManager: keySource', () => {
  it("is 'machine' or 'keychain'; 'keychain' with a secret is a TypeError; neither touches the keychain when constructed", () => {
    expect(() => new SessionManager('a', { keySource: 'tpm' as never })).toThrow(/options\.keySource/)
    expect(() => new SessionManager('a', { keySource: 'keychain', secret: SECRET })).toThrow(TypeError)
    expect(() => new SessionManager('a', { keySource: 'keychain', secrets: [SECRET] })).toThrow(/cannot be combined/)
    expect(() => new SessionManager('a', { keySource: 'machine', secret: SECRET })).not.toThrow()
    expect(() => new SessionManager('a', { keySource: 'keychain', sweepInterval: 0 })).not.toThrow()
  })
})
