// Private directories and atomic files of the native core.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync } from 'node:child_process'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { native, OPEN_REMOVE_EXPIRED, OPEN_REMOVE_INVALID } from '../../lib/core/native'
import { needs } from '../helpers/ci'
import { holdFlock, requireFlock } from '../helpers/flock-holder'

// Skipped where flock(1) is missing, and a failure under CI=true (CI installs util-linux).
const FLOCK = requireFlock()

const MAX = native.DEFAULT_MAX_BYTES
const isRoot = process.getuid?.() === 0
const NOBODY = 65534

let tmp: string
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-files-'))
})
// Every PrivateDir a test opens is closed before its tree is removed: Windows refuses to
// remove a directory we hold open (that is what keeps it from being swapped under us).
const opened: Array<{ close(): void }> = []
const openDir = (p: string, create: boolean) => {
  const d = new native.PrivateDir(p, create)
  opened.push(d)
  return d
}
afterEach(() => {
  for (const d of opened.splice(0)) d.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

const ring = new native.KeyRing({ scope: 'store', name: 'files', ikms: [Buffer.alloc(32, 3)] })
const mode = (p: string) => fs.lstatSync(p).mode & 0o777
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}
const withUmask = <T>(mask: number, fn: () => T): T => {
  const old = process.umask(mask)
  try {
    return fn()
  } finally {
    process.umask(old)
  }
}

describe('PrivateDir', () => {
  it.each([0o000, 0o022, 0o077, 0o277])('creates 0700 dirs and 0600 files whatever the umask (%o)', (mask) => {
    const dir = path.join(tmp, 'a', 'b')
    withUmask(mask, () => {
      const d = openDir(dir, true)
      d.sealToFileSync(ring, 'f', 'x', 'c', 1, 0)
    })
    expect(mode(dir)).toBe(0o700)
    expect(mode(path.join(dir, 'f'))).toBe(0o600)
  })

  it('writes atomically: the envelope round-trips and no temp file is left', async () => {
    const d = openDir(tmp + '/s', true)
    await d.sealToFile(ring, 'one', '{"a":1}', 'ctx', 10, 0)
    d.sealToFileSync(ring, 'one', '{"a":2}', 'ctx', 11, 0)
    expect(fs.readdirSync(tmp + '/s')).toEqual(['one'])
    const r = await d.openFile(ring, 'one', 'ctx', MAX, Date.now(), 0)
    expect(r && 'plaintext' in r && r.plaintext.toString()).toBe('{"a":2}')
    expect(
      fs
        .readFileSync(tmp + '/s/one')
        .subarray(0, 4)
        .toString(),
    ).toBe('SEAL')
  })

  it('existingOnly replaces a file that is there and never re-creates one that is gone', async () => {
    const d = openDir(tmp, true)
    expect(d.sealToFileSync(ring, 'f', 'one', 'c', 1, 0)).toBe(true)
    expect(d.sealToFileSync(ring, 'f', 'two', 'c', 1, 0, true)).toBe(true)
    const r = d.openFileSync(ring, 'f', 'c', MAX, 0, 0)
    expect(r && 'plaintext' in r && r.plaintext.toString()).toBe('two')
    d.removeSync('f')
    expect(d.sealToFileSync(ring, 'f', 'three', 'c', 1, 0, true)).toBe(false)
    expect(await d.sealToFile(ring, 'f', 'three', 'c', 1, 0, true)).toBe(false)
    expect(fs.readdirSync(tmp)).toEqual([]) // no file, no temp left
  })

  it('missing files read as null and remove as false', async () => {
    const d = openDir(tmp, true)
    expect(await d.openFile(ring, 'nope', 'c', MAX, 0, 0)).toBeNull()
    expect(d.openFileSync(ring, 'nope', 'c', MAX, 0, 0)).toBeNull()
    expect(await d.remove('nope')).toBe(false)
    expect(await d.peek('nope')).toBeNull()
  })

  it('refuses a symlinked directory and writes nothing through it', () => {
    const real = path.join(tmp, 'real')
    fs.mkdirSync(real, { mode: 0o700 })
    fs.symlinkSync(real, path.join(tmp, 'link'))
    expect(codeOf(() => openDir(path.join(tmp, 'link'), true))).toBe('ERR_SESSION_UNSAFE_PATH')
    // a trailing slash would make open() follow the final link despite O_NOFOLLOW
    expect(codeOf(() => openDir(path.join(tmp, 'link') + '//', true))).toBe('ERR_SESSION_UNSAFE_PATH')
    expect(fs.readdirSync(real)).toEqual([])
  })

  it('refuses a group- or world-writable directory', () => {
    for (const m of [0o770, 0o702, 0o777]) {
      const dir = path.join(tmp, `w${m.toString(8)}`)
      fs.mkdirSync(dir)
      fs.chmodSync(dir, m)
      expect(codeOf(() => openDir(dir, true))).toBe('ERR_SESSION_UNSAFE_PATH')
    }
  })

  it('notices a directory made group-writable after it was opened, before writing', () => {
    const dir = path.join(tmp, 'later')
    const d = openDir(dir, true)
    fs.chmodSync(dir, 0o770)
    expect(codeOf(() => d.sealToFileSync(ring, 'f', 'x', 'c', 1, 0))).toBe('ERR_SESSION_UNSAFE_PATH')
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it.skipIf(!needs(isRoot, 'root (to chown)'))('refuses a directory owned by another user', () => {
    const dir = path.join(tmp, 'theirs')
    fs.mkdirSync(dir, { mode: 0o700 })
    fs.chownSync(dir, NOBODY, NOBODY)
    expect(codeOf(() => openDir(dir, true))).toBe('ERR_SESSION_UNSAFE_PATH')
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it('refuses a symlinked file, a FIFO and a foreign file on read, without hanging', () => {
    const d = openDir(tmp, true)
    fs.writeFileSync(path.join(tmp, 'target'), 'x')
    fs.symlinkSync(path.join(tmp, 'target'), path.join(tmp, 'link'))
    expect(codeOf(() => d.openFileSync(ring, 'link', 'c', MAX, 0, 0))).toBe('ERR_SESSION_UNSAFE_PATH')
    execFileSync('mkfifo', [path.join(tmp, 'fifo')])
    expect(codeOf(() => d.openFileSync(ring, 'fifo', 'c', MAX, 0, 0))).toBe('ERR_SESSION_UNSAFE_PATH')
    if (isRoot) {
      d.sealToFileSync(ring, 'foreign', 'x', 'c', 1, 0)
      fs.chownSync(path.join(tmp, 'foreign'), NOBODY, NOBODY)
      expect(codeOf(() => d.openFileSync(ring, 'foreign', 'c', MAX, 0, 0))).toBe('ERR_SESSION_UNSAFE_PATH')
    }
  })

  it('a directory where the file should be: a typed I/O error, old state intact, no temp left', () => {
    const d = openDir(tmp, true)
    fs.mkdirSync(path.join(tmp, 'occupied'))
    const err = (() => {
      try {
        d.sealToFileSync(ring, 'occupied', 'x', 'c', 1, 0)
      } catch (e) {
        return e as { code?: string; syscall?: string }
      }
    })()
    expect(err?.code).toBe('ERR_SESSION_IO')
    expect(err?.syscall).toBe('rename')
    expect(fs.statSync(path.join(tmp, 'occupied')).isDirectory()).toBe(true)
    expect(fs.readdirSync(tmp)).toEqual(['occupied'])
  })

  it('refuses names that are not plain file names', () => {
    const d = openDir(tmp, true)
    for (const name of ['', '.', '..', '../x', 'a/b', '/etc/passwd', '.hidden', 'x.lock', 'a\0b', 'x'.repeat(256)]) {
      expect(codeOf(() => d.sealToFileSync(ring, name, 'x', 'c', 1, 0))).toBe('ERR_INVALID_ARG_VALUE')
      expect(codeOf(() => d.openFileSync(ring, name, 'c', MAX, 0, 0))).toBe('ERR_INVALID_ARG_VALUE')
    }
    expect(fs.readdirSync(tmp)).toEqual([])
  })

  it('reads with a size cap, before decrypting', () => {
    const d = openDir(tmp, true)
    d.sealToFileSync(ring, 'big', 'x'.repeat(1000), 'c', 1, 0)
    expect(codeOf(() => d.openFileSync(ring, 'big', 'c', 500, 0, 0))).toBe('ERR_SESSION_TOO_LARGE')
  })

  it('checks expiry from the header and removes expired or invalid files when asked', () => {
    const d = openDir(tmp, true)
    d.sealToFileSync(ring, 'old', 'x', 'c', 1, 1000)
    expect(d.openFileSync(ring, 'old', 'c', MAX, 999, 0)).toMatchObject({ keyIndex: 0 })
    expect(d.openFileSync(ring, 'old', 'c', MAX, 1000, 0)).toEqual({ expired: true, createdAt: 1, expiresAt: 1000 })
    expect(fs.existsSync(path.join(tmp, 'old'))).toBe(true)
    d.openFileSync(ring, 'old', 'c', MAX, 1000, OPEN_REMOVE_EXPIRED)
    expect(fs.existsSync(path.join(tmp, 'old'))).toBe(false)

    d.sealToFileSync(ring, 'bad', 'x', 'c', 1, 0)
    expect(codeOf(() => d.openFileSync(ring, 'bad', 'wrong', MAX, 0, 0))).toBe('ERR_SESSION_TAMPERED')
    expect(fs.existsSync(path.join(tmp, 'bad'))).toBe(true)
    expect(codeOf(() => d.openFileSync(ring, 'bad', 'wrong', MAX, 0, OPEN_REMOVE_INVALID))).toBe('ERR_SESSION_TAMPERED')
    expect(fs.existsSync(path.join(tmp, 'bad'))).toBe(false)
  })

  it('sweeps exactly the expired envelopes by header, leaving other files alone', async () => {
    const d = openDir(tmp, true)
    for (let i = 0; i < 20; i++) d.sealToFileSync(ring, `s${i}`, 'x', 'c', 1, i % 2 === 0 ? 500 : 0)
    fs.writeFileSync(path.join(tmp, 'notes'), 'not an envelope', { mode: 0o600 })
    // An mtime ahead of `now` passes a file by unread (see the mtime tests); this one is read.
    fs.utimesSync(path.join(tmp, 'notes'), 0, 0)
    const lock = d.lockSync('s1')
    lock.release()
    const r = await d.sweep(1000)
    expect(r).toEqual({ scanned: 21, removed: 10, skipped: 1, collected: [] })
    const left = fs.readdirSync(tmp).sort()
    expect(left).toContain('notes')
    expect(left).toContain('s1.lock')
    expect(left.filter((n) => /^s\d+$/.test(n)).map((n) => Number(n.slice(1)) % 2)).toEqual(Array(10).fill(1))
    expect((await d.list()).sort()).toEqual(
      [...Array(10)]
        .map((_, i) => `s${2 * i + 1}`)
        .concat('notes')
        .sort(),
    )
  })

  it.skipIf(!FLOCK)(
    "removes temp files whose writer is gone, at open and in every sweep, whatever their age; never a live writer's",
    async () => {
      fs.mkdirSync(tmp, { recursive: true, mode: 0o700 })
      const dead = path.join(tmp, '.x.0011223344556677.tmp')
      const live = path.join(tmp, '.y.0011223344556677.tmp')
      fs.writeFileSync(dead, 'torn', { mode: 0o600 }) // written a moment ago: no age threshold
      const writer = await holdFlock(live)
      try {
        const d = openDir(tmp, true)
        expect(fs.existsSync(dead)).toBe(false) // removed when the directory was opened
        expect(fs.existsSync(live)).toBe(true) // its writer holds the lock
        fs.writeFileSync(dead, 'torn again', { mode: 0o600 })
        d.sweepSync(Date.now())
        expect(fs.existsSync(dead)).toBe(false)
        expect(fs.existsSync(live)).toBe(true)
        // The async paths open the directory on the pool: that open removes them too.
        fs.writeFileSync(dead, 'torn a third time', { mode: 0o600 })
        const pooled = await native.openPrivateDir(tmp, false)
        expect(fs.existsSync(dead)).toBe(false)
        expect(fs.existsSync(live)).toBe(true)
        pooled.close()
        await writer.release()
        await d.sweep(Date.now())
        expect(fs.existsSync(live)).toBe(false) // its writer is gone now
      } finally {
        await writer.release()
      }
    },
  )

  it('a closed handle refuses further work', () => {
    const d = openDir(tmp, true)
    d.close()
    expect(d.closed).toBe(true)
    expect(codeOf(() => d.openFileSync(ring, 'x', 'c', MAX, 0, 0))).toBe('ERR_SESSION_CLOSED')
  })

  it('the lock excludes another process until released', async () => {
    const d = openDir(tmp, true)
    const lock = await d.lock('shared')
    // flock(1) exits 42 when the lock is held elsewhere, 0 when it got it.
    const tryLock = (): number => {
      try {
        execFileSync('flock', ['-n', '-E', '42', path.join(tmp, 'shared.lock'), 'true'], { stdio: 'pipe' })
        return 0
      } catch (err) {
        return (err as { status: number }).status
      }
    }
    expect(tryLock()).toBe(42)
    lock.release()
    expect(tryLock()).toBe(0)
  })
})
