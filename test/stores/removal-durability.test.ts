// Removals are durable: after unlinking a session file (logout, delete, sweep, the removal of an
// expired file a read found), the directory is fsynced, so a power cut cannot bring a logged-out
// session back. Shown with strace on a child process: in CI (CI=true) a missing strace fails,
// locally these tests are reported skipped.
import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { requireDist } from '../helpers/dist'

const inCI = process.env.CI === 'true' || process.env.CI === '1'
const haveStrace = process.platform === 'linux' && spawnSync('strace', ['--version'], { stdio: 'ignore' }).status === 0
if (!haveStrace && !inCI)
  console.warn('removal-durability: strace tests skipped, strace is not installed (apt-get install strace)')

const dist = (file: string) => JSON.stringify(path.join(__dirname, '..', '..', 'dist', file))
const SECRET = JSON.stringify('a removal-durability secret, 32+ chars')

let tmp: string
let windows: Map<string, string[]>
beforeAll(() => {
  if (!haveStrace) return
  requireDist()
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-durable-'))
  // One child, one traced window per removal (between two marker stats); sessions without an
  // identity, so no index rewrite (which fsyncs the directory by itself) follows a removal.
  const script = `
const fs = require('node:fs'), path = require('node:path'), crypto = require('node:crypto')
const { FileSessionStore, SessionManager } = require(${dist('index.js')})
const { native } = require(${dist('core/native.js')})
const mark = (m) => fs.statSync('/__ss_' + m + '__', { throwIfNoEntry: false })
const name = (id) => crypto.createHash('sha256').update(id).digest('hex')
const storeDir = ${JSON.stringify(path.join(tmp, 'store'))}
const managerDir = ${JSON.stringify(path.join(tmp, 'manager'))}
const names = {}
;(async () => {
  const store = new FileSessionStore({ dir: storeDir, secret: ${SECRET}, sweepInterval: 0 })
  const manager = new SessionManager('durable', { dir: managerDir, secret: ${SECRET}, cleanupInterval: 0 })
  const raw = new native.PrivateDir(storeDir, true)
  const ring = new native.KeyRing({ scope: 'store', name: 'other', ikms: [Buffer.alloc(32, 7)] })
  // An envelope whose header says it expired an hour ago (the header alone decides).
  const expired = (dir, file) => dir.sealToFileSync(ring, file, '{}', 'c', Date.now() - 7200000, Date.now() - 3600000)

  const s = await store.create()
  names.delete = name(s.id)
  mark('begin-delete'); await store.delete(s.id); mark('end-delete')

  await manager.login('u', 'e')
  mark('begin-logout'); await manager.logout(); mark('end-logout')

  names.sweep = '0'.repeat(64)
  expired(raw, names.sweep)
  mark('begin-sweep'); await store.purgeExpired(); mark('end-sweep')

  const id = 'an expired session id'
  names.read = name(id)
  expired(raw, names.read)
  mark('begin-read'); await store.get(id); mark('end-read')

  raw.close()
  await store.close()
  await manager.close()
  fs.writeFileSync(${JSON.stringify(path.join(tmp, 'names.json'))}, JSON.stringify(names))
})().catch((err) => { console.error(err); process.exit(3) })
`
  const file = path.join(tmp, 'traced.cjs')
  const out = path.join(tmp, 'strace.txt')
  fs.writeFileSync(file, script)
  execFileSync('strace', ['-f', '-e', 'trace=%file,%desc', '-o', out, process.execPath, file], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const lines = fs.readFileSync(out, 'utf8').split('\n')
  windows = new Map()
  for (const op of ['delete', 'logout', 'sweep', 'read']) {
    const begin = lines.findIndex((l) => l.includes(`/__ss_begin-${op}__`))
    const end = lines.findIndex((l) => l.includes(`/__ss_end-${op}__`))
    expect(begin, `begin-${op} traced`).toBeGreaterThanOrEqual(0)
    expect(end, `end-${op} traced`).toBeGreaterThan(begin)
    windows.set(op, lines.slice(begin + 1, end))
  }
}, 60_000)
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
})

// The descriptor the file was unlinked through, and whether that descriptor (the directory) was
// fsynced (or fdatasynced) after the unlink, within the window.
function syncedAfterUnlink(op: string, file: string): { unlinkedVia: string | null; synced: boolean } {
  const lines = windows.get(op)!
  const at = lines.findIndex((l) => new RegExp(`unlinkat\\((\\d+), "${file}"`).test(l))
  if (at < 0) return { unlinkedVia: null, synced: false }
  const fd = /unlinkat\((\d+),/.exec(lines[at])![1]
  const synced = lines.slice(at + 1).some((l) => new RegExp(`\\bf(data)?sync\\(${fd}[ )]`).test(l))
  return { unlinkedVia: fd, synced }
}

describe.skipIf(!haveStrace && !inCI)('a removal fsyncs the directory after the unlink (strace)', () => {
  it('strace is installed (CI must apt-get install strace)', () => {
    expect(haveStrace).toBe(true)
  })

  const names = () => JSON.parse(fs.readFileSync(path.join(tmp, 'names.json'), 'utf8')) as Record<string, string>

  it('FileSessionStore.delete', () => {
    const seen = syncedAfterUnlink('delete', names().delete)
    expect(seen.unlinkedVia).not.toBeNull()
    expect(seen.synced).toBe(true)
  })

  it('SessionManager.logout', () => {
    const seen = syncedAfterUnlink('logout', 'session.enc')
    expect(seen.unlinkedVia).not.toBeNull()
    expect(seen.synced).toBe(true)
  })

  it('the sweep (purgeExpired)', () => {
    const seen = syncedAfterUnlink('sweep', names().sweep)
    expect(seen.unlinkedVia).not.toBeNull()
    expect(seen.synced).toBe(true)
  })

  it('a read that finds an expired file and removes it', () => {
    const seen = syncedAfterUnlink('read', names().read)
    expect(seen.unlinkedVia).not.toBeNull()
    expect(seen.synced).toBe(true)
  })
})
