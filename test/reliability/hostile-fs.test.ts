// Hostile filesystem: a session directory or file that is a symlink, a directory owned
// by another user or writable by group/others, a FIFO or a directory where the session file
// should be, and a full disk (RLIMIT_FSIZE in a child process, and a 64 KiB tmpfs when this
// machine lets us mount one). Each gives a typed SessionError with a stable code, writes nothing
// outside the session directory, and loses no good session that was already there.
import { execFileSync } from 'node:child_process'
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'

import {
  FileSessionStore,
  Session,
  SessionError,
  SessionIOError,
  SessionManager,
  SessionSecurityError,
  generateSessionId,
  storageName,
} from '../../lib/index'
import { FIXTURES, IS_ROOT, ROOT, SECRET, STORE_SECRET, lastJson, requireDist, rmTree, run, tmpRoot } from './helpers'
import { needs } from '../helpers/ci'

// What a manager's directory holds after a login: the session and the lock file that login,
// logout and extendSession share.
const SESSION_FILES = ['session.enc', 'session.enc.lock']

const NOBODY = 65534
const TEMP = /^\..+\.[0-9a-f]{16}\.tmp$/

let root: string
let cases = 0
let typedErrors = 0
let goodChecks = 0
let treeChecks = 0
beforeAll(() => {
  requireDist()
})
beforeEach(() => {
  root = tmpRoot('hostile-fs')
})
const open: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  for (const o of open.splice(0)) await o.close()
  rmTree(root)
})
afterAll(() => {
  console.log(
    `hostile-fs: ${cases} hostile situations, ${typedErrors} typed errors (SessionError subclasses with a stable code), ` +
      `${goodChecks} checks that the good session survived, ${treeChecks} before/after snapshots showing nothing written outside`,
  )
})

/** The session files of a store directory (its stripe lock and identity index files left out). */
const sessionFiles = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((e) => /^[0-9a-f]{64}$/.test(e))
    .sort()

/** Every path under dir with a content hash for files and the target for symlinks. */
function tree(dir: string): string[] {
  const out: string[] = []
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`
      const full = path.join(dir, p)
      if (e.isSymbolicLink()) out.push(`l ${p} -> ${fs.readlinkSync(full)}`)
      else if (e.isDirectory()) {
        out.push(`d ${p}`)
        walk(p)
      } else if (e.isFile())
        out.push(`f ${p} ${crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex').slice(0, 16)}`)
      else out.push(`? ${p}`)
    }
  }
  walk('')
  return out.sort()
}

/** The tree of root without the given directory (the session directory may change). */
const outside = (except: string) => tree(root).filter((l) => !l.slice(2).startsWith(path.relative(root, except)))

/** Nothing outside changed: a snapshot taken before equals one taken now. */
function expectSameTree(now: string[], before: string[]) {
  expect(now).toEqual(before)
  treeChecks++
}

async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn()
  } catch (err) {
    return err
  }
  return undefined
}

/** fn must fail with a SessionError subclass and the code; counts it for the figure. */
async function expectTyped(fn: () => unknown, Cls: new (...a: never[]) => SessionError, code: string, errno?: number) {
  const err = await caught(fn)
  expect(err, `expected ${Cls.name} ${code}`).toBeInstanceOf(Cls)
  expect(err).toBeInstanceOf(SessionError)
  expect((err as SessionError).code).toBe(code)
  if (errno !== undefined) expect((err as SessionIOError).errno).toBe(errno)
  typedErrors++
  return err as SessionError
}

function manager(dir: string, app = 'hostile-app') {
  const m = new SessionManager(app, { dir, secret: SECRET, cleanupInterval: 0 })
  open.push(m)
  return m
}

function store(dir: string) {
  const s = new FileSessionStore({ dir, secret: STORE_SECRET, sweepInterval: 0, touchAfter: 3_600_000 })
  open.push(s)
  return s
}

/** A private dir with a good manager session in it. */
async function goodManagerDir(name = 'sessions') {
  const dir = path.join(root, name)
  const m = new SessionManager('hostile-app', { dir, secret: SECRET, cleanupInterval: 0 })
  const record = await m.login('alice', 'eid-good', { data: { keep: true } })
  await m.close()
  return { dir, record, bytes: fs.readFileSync(path.join(dir, 'session.enc')) }
}

/** A store dir with a good session in it. */
async function goodStoreDir(name = 'store') {
  const dir = path.join(root, name)
  const s = new FileSessionStore({ dir, secret: STORE_SECRET, sweepInterval: 0 })
  const good = await s.create({ identity: 'alice' })
  good.data.set('keep', true)
  await s.save(good)
  await s.close()
  return { dir, id: good.id, file: path.join(dir, storageName(good.id)) }
}

async function expectGoodManager(dir: string, record: { toJSON(): unknown }) {
  const m = manager(dir)
  expect((await m.getSession())?.toJSON()).toEqual(record.toJSON())
  goodChecks++
}

async function expectGoodStore(dir: string, id: string) {
  const s = store(dir)
  const back = await s.get(id)
  expect(back?.avatar.identity).toBe('alice')
  expect(back?.data.get('keep')).toBe(true)
  goodChecks++
}

describe('symlinks', () => {
  it('the session directory as a symlink (also with a trailing slash): refused, nothing written through it', async () => {
    const { dir: real, record, bytes } = await goodManagerDir('real')
    const link = path.join(root, 'link')
    fs.symlinkSync(real, link)
    const before = tree(root)
    for (const dir of [link, `${link}/`]) {
      cases++
      const m = manager(dir)
      await expectTyped(() => m.login('mallory', 'e'), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
      await expectTyped(() => m.getSession(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
      await expectTyped(() => m.logout(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
      await expectTyped(() => store(dir).init(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    }
    expectSameTree(tree(root), before)
    expect(fs.readFileSync(path.join(real, 'session.enc'))).toEqual(bytes)
    await expectGoodManager(real, record)
  })

  it('the directory swapped for a symlink after opening (TOCTOU): nothing is written through the new link', async () => {
    cases++
    const { dir, record } = await goodManagerDir()
    const m = manager(dir)
    await m.init()
    const st = await goodStoreDir()
    const s = store(st.dir)
    await s.init() // opened before the swap (the store opens its directory on the pool)
    // Both directories are moved away and replaced by symlinks to a directory of the attacker's choosing.
    const elsewhere = path.join(root, 'elsewhere')
    fs.mkdirSync(elsewhere, { mode: 0o700 })
    fs.renameSync(dir, `${dir}-moved`)
    fs.renameSync(st.dir, `${st.dir}-moved`)
    fs.symlinkSync(elsewhere, dir)
    fs.symlinkSync(elsewhere, st.dir)
    const next = await m.login('bob', 'eid-after-swap')
    const created = await s.create({ identity: 'carol' })
    expect(fs.readdirSync(elsewhere)).toEqual([])
    // The writes went to the directory that was opened (now at its new name), as the fd says.
    expect(fs.readdirSync(`${dir}-moved`).sort()).toEqual(SESSION_FILES)
    expect(sessionFiles(`${st.dir}-moved`)).toEqual([storageName(st.id), storageName(created.id)].sort())
    expect((await m.getSession())?.toJSON()).toEqual(next.toJSON())
    // A fresh manager on the path refuses the symlink.
    await expectTyped(() => manager(dir).getSession(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    expect(record.userId).toBe('alice')
  })

  it('session.enc as a symlink: reads are refused, the target is never written, a login replaces the link', async () => {
    cases++
    const dir = path.join(root, 'sessions')
    const target = path.join(root, 'precious.txt')
    fs.writeFileSync(target, 'precious', { mode: 0o600 })
    const m = manager(dir)
    await m.init()
    fs.symlinkSync(target, path.join(dir, 'session.enc'))
    const before = outside(dir)
    await expectTyped(() => m.getSession(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    await expectTyped(() => m.getSessionSync(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    const record = await m.login('alice', 'eid')
    expect(fs.lstatSync(path.join(dir, 'session.enc')).isFile()).toBe(true)
    expect(fs.readFileSync(target, 'utf8')).toBe('precious')
    expectSameTree(outside(dir), before)
    expect((await m.getSession())?.toJSON()).toEqual(record.toJSON())
  })

  it('the lock file as a symlink (dangling or to a file outside): extendSession is refused, nothing is created or written outside', async () => {
    cases += 2
    const { dir, record } = await goodManagerDir()
    const lockPath = path.join(dir, 'session.enc.lock')
    const outsideFile = path.join(root, 'outside.txt')
    const dangling = path.join(root, 'would-be-created')
    for (const target of [dangling, outsideFile]) {
      if (target === outsideFile) fs.writeFileSync(outsideFile, 'precious', { mode: 0o600 })
      fs.rmSync(lockPath, { force: true })
      fs.symlinkSync(target, lockPath)
      const before = tree(root)
      const m = manager(dir)
      await expectTyped(() => m.extendSession(1000), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
      expectSameTree(tree(root), before)
    }
    expect(fs.existsSync(dangling)).toBe(false)
    expect(fs.readFileSync(outsideFile, 'utf8')).toBe('precious')
    fs.rmSync(lockPath)
    await expectGoodManager(dir, record)
  })

  it('session.enc as a hard link to a file outside: it reads as no session, and neither read nor login writes through it', async () => {
    cases++
    const dir = path.join(root, 'sessions')
    const m = manager(dir)
    await m.init()
    const outsideFile = path.join(root, 'outside.bin')
    fs.writeFileSync(outsideFile, 'precious, not an envelope', { mode: 0o600 })
    fs.linkSync(outsideFile, path.join(dir, 'session.enc'))
    const before = outside(dir)
    expect(await m.getSession()).toBeNull() // not an envelope: discarded (the link only)
    expect(fs.readFileSync(outsideFile, 'utf8')).toBe('precious, not an envelope')
    fs.linkSync(outsideFile, path.join(dir, 'session.enc'))
    const record = await m.login('alice', 'eid')
    expect(fs.readFileSync(outsideFile, 'utf8')).toBe('precious, not an envelope')
    expect(fs.statSync(outsideFile).nlink).toBe(1)
    expectSameTree(outside(dir), before)
    expect((await m.getSession())?.toJSON()).toEqual(record.toJSON())
  })

  it('a store file as a symlink: get is refused, the other session still reads, the target is never written', async () => {
    cases++
    const { dir, id } = await goodStoreDir()
    const target = path.join(root, 'precious.txt')
    fs.writeFileSync(target, 'precious', { mode: 0o600 })
    const victim = generateSessionId()
    fs.symlinkSync(target, path.join(dir, storageName(victim)))
    const before = tree(root)
    const s = store(dir)
    await expectTyped(() => s.get(victim), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    expect(await s.purgeExpired()).toBe(0)
    expect((await s.dump()).sessions.map((r) => r.id)).toEqual([id])
    expect(fs.readFileSync(target, 'utf8')).toBe('precious')
    expectSameTree(tree(root), before)
    await expectGoodStore(dir, id)
  })
})

describe.skipIf(!needs(IS_ROOT, 'root (to chown)'))('a directory owned by another user', () => {
  it('refused when opened and when changed after opening; the good session survives', async () => {
    cases += 2
    const { dir, record, bytes } = await goodManagerDir()
    const store0 = await goodStoreDir()
    const before = tree(root)
    fs.chownSync(dir, NOBODY, NOBODY)
    fs.chownSync(store0.dir, NOBODY, NOBODY)
    const m = manager(dir)
    await expectTyped(() => m.login('mallory', 'e'), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    await expectTyped(() => m.getSession(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    await expectTyped(() => store(store0.dir).init(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    fs.chownSync(dir, 0, 0)
    fs.chownSync(store0.dir, 0, 0)

    // Opened while ours, then handed to someone else (only root can): every write and sweep
    // re-checks. Reads do not: the held descriptor pins the directory checked at open,
    // and a file planted by its new owner is still refused by its own owner check.
    const m2 = manager(dir)
    await m2.init()
    const s2 = store(store0.dir)
    await s2.init()
    fs.chownSync(dir, NOBODY, NOBODY)
    fs.chownSync(store0.dir, NOBODY, NOBODY)
    await expectTyped(() => m2.login('mallory', 'e'), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    await expectTyped(() => m2.extendSession(1000), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    expect((await m2.getSession())?.userId).toBe(record.userId)
    await expectTyped(() => s2.create({ identity: 'mallory' }), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    await expectTyped(() => s2.purgeExpired(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    expect(fs.readFileSync(path.join(dir, 'session.enc'))).toEqual(bytes)
    expect(fs.readdirSync(dir).sort()).toEqual(SESSION_FILES)
    fs.chownSync(dir, 0, 0)
    fs.chownSync(store0.dir, 0, 0)
    expectSameTree(tree(root), before)
    await expectGoodManager(dir, record)
    await expectGoodStore(store0.dir, store0.id)
  })

  it('a session file owned by another user is refused on read and left alone', async () => {
    cases += 2
    const { dir, bytes } = await goodManagerDir()
    fs.chownSync(path.join(dir, 'session.enc'), NOBODY, NOBODY)
    const m = manager(dir)
    await expectTyped(() => m.getSession(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    expect(fs.readFileSync(path.join(dir, 'session.enc'))).toEqual(bytes)
    expect(fs.statSync(path.join(dir, 'session.enc')).uid).toBe(NOBODY)

    // In a store: that session is refused, the others read; the sweep skips the file.
    const st = await goodStoreDir()
    const s = store(st.dir)
    const victim = await s.create({ identity: 'victim' })
    const victimFile = path.join(st.dir, storageName(victim.id))
    fs.chownSync(victimFile, NOBODY, NOBODY)
    await expectTyped(() => s.get(victim.id), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    expect(await s.purgeExpired()).toBe(0)
    expect(fs.statSync(victimFile).uid).toBe(NOBODY)
    await expectGoodStore(st.dir, st.id)
  })
})

describe('a directory writable by group or others', () => {
  it.each(['770', '707', '777', '720', '702'])(
    'mode %s: refused when opened and after opening; the good session survives',
    async (octal) => {
      cases++
      const mode = parseInt(octal, 8)
      const { dir, record, bytes } = await goodManagerDir()
      const st = await goodStoreDir()
      const before = tree(root)
      fs.chmodSync(dir, mode)
      fs.chmodSync(st.dir, mode)
      const m = manager(dir)
      await expectTyped(() => m.login('mallory', 'e'), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
      await expectTyped(() => store(st.dir).init(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
      fs.chmodSync(dir, 0o700)
      fs.chmodSync(st.dir, 0o700)
      const m2 = manager(dir)
      await m2.init()
      const s2 = store(st.dir)
      await s2.init()
      fs.chmodSync(dir, mode)
      fs.chmodSync(st.dir, mode)
      await expectTyped(() => m2.login('mallory', 'e'), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
      // Reads go through the descriptor checked at open: only we or root could chmod it.
      expect((await m2.getSession())?.userId).toBe(record.userId)
      await expectTyped(() => s2.create({ identity: 'mallory' }), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
      expect(fs.readdirSync(dir).sort()).toEqual(SESSION_FILES)
      expect(fs.readFileSync(path.join(dir, 'session.enc'))).toEqual(bytes)
      fs.chmodSync(dir, 0o700)
      fs.chmodSync(st.dir, 0o700)
      expectSameTree(tree(root), before)
      await expectGoodManager(dir, record)
      await expectGoodStore(st.dir, st.id)
    },
  )

  it('a session file writable by group is refused on read and left alone', async () => {
    cases++
    const { dir, bytes } = await goodManagerDir()
    fs.chmodSync(path.join(dir, 'session.enc'), 0o620)
    const m = manager(dir)
    await expectTyped(() => m.getSession(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    expect(fs.readFileSync(path.join(dir, 'session.enc'))).toEqual(bytes)
  })
})

describe('something else where the session file should be', () => {
  it('a FIFO: reads are refused at once (no hang); the store’s other session still reads', async () => {
    cases += 2
    const dir = path.join(root, 'sessions')
    const m = manager(dir)
    await m.init()
    execFileSync('mkfifo', ['-m', '600', path.join(dir, 'session.enc')])
    const started = Date.now()
    await expectTyped(() => m.getSession(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    await expectTyped(() => m.getSessionSync(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    await expectTyped(() => m.extendSession(1000), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    expect(Date.now() - started).toBeLessThan(2000)
    expect(fs.lstatSync(path.join(dir, 'session.enc')).isFIFO()).toBe(true)

    const st = await goodStoreDir()
    const victim = generateSessionId()
    execFileSync('mkfifo', ['-m', '600', path.join(st.dir, storageName(victim))])
    const before = tree(root)
    const s = store(st.dir)
    await expectTyped(() => s.get(victim), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    expect(await s.purgeExpired()).toBe(0)
    expect((await s.dump()).sessions.map((r) => r.id)).toEqual([st.id])
    expectSameTree(tree(root), before)
    await expectGoodStore(st.dir, st.id)
  })

  it('a directory: manager writes fail with ERR_SESSION_IO (EISDIR), store writes and reads with ERR_SESSION_UNSAFE_PATH; no temp file left', async () => {
    cases += 2
    const dir = path.join(root, 'sessions')
    const m = manager(dir)
    await m.init()
    const occupied = path.join(dir, 'session.enc')
    fs.mkdirSync(occupied, { mode: 0o700 })
    fs.writeFileSync(path.join(occupied, 'inside'), 'x')
    const before = tree(root)
    const err = await expectTyped(
      () => m.login('alice', 'e'),
      SessionIOError,
      'ERR_SESSION_IO',
      os.constants.errno.EISDIR,
    )
    expect((err as SessionIOError).syscall).toBe('rename')
    await expectTyped(() => m.getSession(), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    await expectTyped(() => m.logout(), SessionIOError, 'ERR_SESSION_IO', os.constants.errno.EISDIR)
    expect(fs.readdirSync(dir).sort()).toEqual(SESSION_FILES)
    expect(fs.readdirSync(occupied)).toEqual(['inside'])
    // The only new entry is the (empty) lock file the failed login took.
    expectSameTree(
      tree(root).filter((e) => !e.startsWith('f sessions/session.enc.lock ')),
      before,
    )

    const st = await goodStoreDir()
    const s = store(st.dir)
    const victim = new Session(generateSessionId(), { identity: 'v' }, 60_000)
    fs.mkdirSync(path.join(st.dir, storageName(victim.id)), { mode: 0o700 })
    // A store write reads the current record first (compare-and-swap): the directory is refused there.
    await expectTyped(() => s.save(victim), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    await expectTyped(
      () => s.restore({ version: 1, sessions: [victim.toRecord()] }),
      SessionIOError,
      'ERR_SESSION_IO',
      os.constants.errno.EISDIR,
    )
    await expectTyped(() => s.get(victim.id), SessionSecurityError, 'ERR_SESSION_UNSAFE_PATH')
    expect(fs.readdirSync(st.dir).filter((e) => TEMP.test(e))).toEqual([])
    await expectGoodStore(st.dir, st.id)
  })
})

describe('a full disk', () => {
  /** Runs the full-disk fixture with RLIMIT_FSIZE = 1 KiB and SIGXFSZ ignored. */
  async function underFsizeLimit(args: string[]) {
    const script = `trap '' XFSZ; ulimit -f 1; exec "$0" "$@"`
    const r = await run(
      'bash',
      ['-c', script, process.execPath, path.join(FIXTURES, 'reliability-full-disk.mjs'), ...args],
      { cwd: ROOT },
      20_000,
    )
    expect(r.stderr).toBe('')
    expect(r.signal).toBeNull()
    return lastJson<{ attempts: Array<Record<string, unknown>>; after: Record<string, unknown> | null }>(r)
  }

  it('RLIMIT_FSIZE: an oversized login fails with ERR_SESSION_IO (EFBIG); the old session survives, no temp left', async () => {
    cases++
    const { dir, record } = await goodManagerDir()
    expect(fs.statSync(path.join(dir, 'session.enc')).size).toBeLessThan(1024)
    const before = outside(dir)
    const out = await underFsizeLimit(['manager', dir, 'hostile-app', SECRET])
    expect(out.attempts[0]).toMatchObject({
      name: 'SessionIOError',
      code: 'ERR_SESSION_IO',
      errno: os.constants.errno.EFBIG,
      syscall: 'write',
      sessionError: true,
    })
    typedErrors++
    expect(out.attempts[1]).toEqual({ what: 'extendSession', ok: true })
    expect(out.after).toEqual({ userId: 'alice', eid: 'eid-good', data: { keep: true } })
    expect(fs.readdirSync(dir).filter((e) => TEMP.test(e))).toEqual([])
    expectSameTree(outside(dir), before)
    const m = manager(dir)
    expect((await m.getSession())?.data).toEqual(record.data)
  })

  it('RLIMIT_FSIZE: oversized store saves fail with ERR_SESSION_IO (EFBIG); the good session keeps its old data', async () => {
    cases++
    const st = await goodStoreDir()
    const before = outside(st.dir)
    const out = await underFsizeLimit(['store', st.dir, st.id, STORE_SECRET])
    for (const a of out.attempts) {
      expect(a).toMatchObject({
        code: 'ERR_SESSION_IO',
        errno: os.constants.errno.EFBIG,
        syscall: 'write',
        sessionError: true,
      })
      typedErrors++
    }
    expect(out.after).toEqual({ identity: 'alice', data: { keep: true } })
    expect(sessionFiles(st.dir)).toEqual([storageName(st.id)])
    expect(fs.readdirSync(st.dir).filter((e) => TEMP.test(e))).toEqual([])
    expectSameTree(outside(st.dir), before)
    await expectGoodStore(st.dir, st.id)
  })

  describe('on a 64 KiB tmpfs (skipped where mount is not allowed)', () => {
    let mnt = ''
    let mounted = false
    beforeEach(() => {
      mnt = path.join(root, 'mnt')
      fs.mkdirSync(mnt)
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0755', 'tmpfs', mnt], { stdio: 'pipe' })
        mounted = true
      } catch {
        mounted = false
      }
    })
    afterEach(async () => {
      for (const o of open.splice(0)) await o.close()
      if (mounted) execFileSync('umount', [mnt])
      mounted = false
    })

    /** Fills the tmpfs to the last byte; returns a function that frees the space again. */
    function fill(): () => void {
      const filler = path.join(mnt, 'filler')
      const fd = fs.openSync(filler, 'w')
      const chunk = Buffer.alloc(4096, 1)
      try {
        for (;;) fs.writeSync(fd, chunk)
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC')
      }
      try {
        for (;;) fs.writeSync(fd, chunk, 0, 1)
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC')
      }
      fs.closeSync(fd)
      return () => fs.rmSync(filler)
    }

    it('a login and a store save fail with ERR_SESSION_IO (ENOSPC); the good sessions survive and work again once space is freed', async (ctx) => {
      if (!needs(mounted, 'a tmpfs mount (mount -t tmpfs)')) ctx.skip()
      cases += 2
      const dir = path.join(mnt, 'sessions')
      const m = manager(dir)
      const good = await m.login('alice', 'eid-good', { data: { keep: true } })
      const s = store(path.join(mnt, 'store'))
      const a = await s.create({ identity: 'alice' })
      a.data.set('keep', true)
      await s.save(a)
      const before = outside(mnt)
      const free = fill()

      const bigData = { big: 'x'.repeat(16_000) }
      await expectTyped(
        () => m.login('big', 'e', { data: bigData }),
        SessionIOError,
        'ERR_SESSION_IO',
        os.constants.errno.ENOSPC,
      )
      expect((await m.getSession())?.toJSON()).toEqual(good.toJSON())
      const grown = (await s.get(a.id))!
      grown.data.set('big', bigData.big)
      await expectTyped(() => s.save(grown), SessionIOError, 'ERR_SESSION_IO', os.constants.errno.ENOSPC)
      const fresh = new Session(generateSessionId(), { identity: 'new' }, 60_000)
      await expectTyped(() => s.save(fresh), SessionIOError, 'ERR_SESSION_IO', os.constants.errno.ENOSPC)
      expect((await s.get(a.id))?.data.toJSON()).toEqual({ keep: true })
      expect(await s.get(fresh.id)).toBeNull()
      expect(fs.readdirSync(dir).sort()).toEqual(SESSION_FILES)
      expect(sessionFiles(path.join(mnt, 'store'))).toEqual([storageName(a.id)])
      expectSameTree(outside(mnt), before)

      free()
      await m.login('big', 'e', { data: bigData })
      expect((await m.getSession())?.userId).toBe('big')
      await s.save(grown)
      expect((await s.get(a.id))?.data.get('big')).toBe(bigData.big)
    })

    it('remounted read-only: reads still work, writes fail with ERR_SESSION_IO (EROFS), nothing is lost', async (ctx) => {
      if (!needs(mounted, 'a tmpfs mount (mount -t tmpfs)')) ctx.skip()
      cases++
      const dir = path.join(mnt, 'sessions')
      const m = manager(dir)
      const good = await m.login('alice', 'eid-good', { data: { keep: true } })
      const s = store(path.join(mnt, 'store'))
      const a = await s.create({ identity: 'alice' })
      execFileSync('mount', ['-o', 'remount,ro', mnt])
      try {
        expect((await m.getSession())?.toJSON()).toEqual(good.toJSON())
        expect((await s.get(a.id))?.avatar.identity).toBe('alice')
        const EROFS = os.constants.errno.EROFS
        await expectTyped(() => m.login('bob', 'e'), SessionIOError, 'ERR_SESSION_IO', EROFS)
        await expectTyped(() => m.extendSession(1000), SessionIOError, 'ERR_SESSION_IO', EROFS)
        await expectTyped(() => m.logout(), SessionIOError, 'ERR_SESSION_IO', EROFS)
        await expectTyped(() => s.create({ identity: 'bob' }), SessionIOError, 'ERR_SESSION_IO', EROFS)
        await expectTyped(() => s.delete(a.id), SessionIOError, 'ERR_SESSION_IO', EROFS)
        expect((await m.getSession())?.toJSON()).toEqual(good.toJSON())
        expect((await s.get(a.id))?.avatar.identity).toBe('alice')
      } finally {
        execFileSync('mount', ['-o', 'remount,rw', mnt])
      }
    })
  })
})
