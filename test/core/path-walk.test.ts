// A store's or manager's dir is resolved from '/' component by component; a parent that
// others can write and that is not sticky is refused, so a symlink planted there cannot point
// the store at another app's private directory. A sticky /tmp stays fine.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { SessionSecurityError } from '../../lib/core/errors'
import { FileSessionStore } from '../../lib/stores/file-store'
import { SessionManager } from '../../lib/manager/manager'

const SECRET = 'path walk test secret, 32 characters ok'
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-walk-'))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

async function refusal(fn: () => unknown): Promise<SessionSecurityError> {
  try {
    await fn()
  } catch (err) {
    expect(err).toBeInstanceOf(SessionSecurityError)
    expect((err as SessionSecurityError).code).toBe('ERR_SESSION_UNSAFE_PATH')
    return err as SessionSecurityError
  }
  throw new Error('expected a SessionSecurityError')
}

describe('a dir through a parent others can write', () => {
  it('the symlinked-parent attack on a FileSessionStore is refused, naming the parent', async () => {
    const base = fs.mkdtempSync(path.join(root, 'attack-'))
    // App A keeps an admin session in its private directory.
    const aDir = path.join(base, 'appA', 'sessions')
    const a = new FileSessionStore({ dir: aDir, secret: SECRET, sweepInterval: 0 })
    const admin = await a.create({ sub: 'root-admin', roles: ['admin'] })
    await a.close()
    // App B's dir runs through a world-writable, non-sticky directory; a local user replaced
    // B's component there with a symlink to A's directory.
    const shared = path.join(base, 'shared')
    fs.mkdirSync(shared)
    fs.chmodSync(shared, 0o777)
    fs.symlinkSync(path.join(base, 'appA'), path.join(shared, 'appB'))
    const bDir = path.join(shared, 'appB', 'sessions')
    const err = await refusal(() => new FileSessionStore({ dir: bDir, secret: SECRET, sweepInterval: 0 }).init())
    expect(err.message).toContain(
      `directory ${shared} on the path of session directory ${bDir} is writable by others and not sticky`,
    )
    // The manager's dir goes through the same walk.
    const m = new SessionManager('walk-app', { dir: bDir, secret: SECRET, cleanupInterval: 0 })
    await expect(m.init()).rejects.toThrow(SessionSecurityError)
    await m.close()
    // A's session is still there and only A reads it.
    const again = new FileSessionStore({ dir: aDir, secret: SECRET, sweepInterval: 0 })
    expect((await again.get(admin.id))!.avatar.identity).toBe('root-admin')
    await again.close()
  })

  it('a relative dir is resolved against the current directory (of construction) and walked the same way', async () => {
    const base = fs.mkdtempSync(path.join(root, 'rel-'))
    const shared = path.join(base, 'shared')
    fs.mkdirSync(path.join(shared, 'x'), { recursive: true })
    fs.chmodSync(shared, 0o777)
    const cwd = process.cwd()
    process.chdir(base)
    try {
      await refusal(() => new FileSessionStore({ dir: 'shared/x/sessions', secret: SECRET, sweepInterval: 0 }).init())
      fs.chmodSync(shared, 0o755)
      const ok = new FileSessionStore({ dir: 'shared/x/sessions', secret: SECRET, sweepInterval: 0 })
      // The directory is opened on the pool, after this chdir: still the one named at construction.
      process.chdir(cwd)
      await ok.init()
      await ok.close()
      expect(fs.statSync(path.join(shared, 'x', 'sessions')).mode & 0o777).toBe(0o700)
    } finally {
      process.chdir(cwd)
    }
  })
})

describe('a sticky shared parent stays allowed', () => {
  it('a store under os.tmpdir() (sticky /tmp) works, through our own symlink there too', async () => {
    const tmp = fs.statSync(os.tmpdir())
    expect(tmp.mode & 0o1000).toBe(0o1000) // the premise: a sticky, world-writable /tmp
    expect(tmp.mode & 0o002).toBe(0o002)
    const dir = path.join(root, 'sticky-ok', 'sessions')
    const store = new FileSessionStore({ dir, secret: SECRET, sweepInterval: 0 })
    const s = await store.create()
    expect(await store.get(s.id)).not.toBeNull()
    await store.close()
    // Our own symlink in the sticky directory is followed (as protected_symlinks allows).
    const link = path.join(os.tmpdir(), `ss-walk-link-${process.pid}`)
    fs.symlinkSync(path.join(root, 'sticky-ok'), link)
    try {
      const via = new FileSessionStore({ dir: path.join(link, 'sessions'), secret: SECRET, sweepInterval: 0 })
      expect(await via.get(s.id)).not.toBeNull()
      await via.close()
    } finally {
      fs.unlinkSync(link)
    }
  })
})
