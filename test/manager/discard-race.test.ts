// The manager removes a file that holds no valid session record (authentic, but not a record of
// ours) only under its cross-process lock, and only if the file there still holds none: a login
// that lands between the judgement and the removal is kept. The interleaving is deterministic:
// the judgement's warning (logged before the removal) writes the other login, as a process
// logging in at that moment would.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

import { makeKeyRing } from '../../lib/core/keys'
import { native, type NativePrivateDir } from '../../lib/core/native'
import { SessionManager } from '../../lib/manager/manager'
import { SessionData } from '../../lib/manager/session-data'

const APP = 'discard-race'
const SECRET = 'a discard-race test secret, 32+ chars'
const CONTEXT = `manager:${APP}`
const HOUR = 3_600_000

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-discard-'))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
let n = 0
const opened: Array<{ close(): unknown }> = []
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close()
})

// The manager's own key (same derivation), to write files as another process of the app would.
const ring = makeKeyRing('manager', APP, { secret: SECRET })

function setup(): { dir: string; raw: NativePrivateDir; writeLogin: (userId: string) => void } {
  const dir = path.join(root, `d${n++}`)
  const raw = new native.PrivateDir(dir, true)
  opened.push(raw)
  // Authentic (our key, our context) but not a session record.
  const now = Date.now()
  raw.sealToFileSync(ring, 'session.enc', '{"not":"a session record"}', CONTEXT, now, now + HOUR)
  const writeLogin = (userId: string) => {
    const t = Date.now()
    const record = new SessionData({
      userId,
      userName: null,
      eid: `eid-${userId}`,
      createdAt: new Date(t).toISOString(),
      expiresAt: new Date(t + HOUR).toISOString(),
      data: {},
    })
    raw.sealToFileSync(ring, 'session.enc', JSON.stringify(record), CONTEXT, t, t + HOUR)
  }
  return { dir, raw, writeLogin }
}

// A manager whose warning about the unusable file is the moment another process's login lands.
function racedManager(dir: string, landLogin: () => void): SessionManager {
  let landed = false
  const logger = {
    debug() {},
    info() {},
    error() {},
    warn(message: string) {
      if (!landed && message.includes('holds no valid record')) {
        landed = true
        landLogin()
      }
    },
  }
  const m = new SessionManager(APP, { dir, secret: SECRET, logger, cleanupInterval: 0 })
  opened.push(m)
  return m
}

async function readBack(dir: string): Promise<string | null> {
  const m = new SessionManager(APP, { dir, secret: SECRET, cleanupInterval: 0 })
  opened.push(m)
  return (await m.getSession())?.userId ?? null
}

describe('discarding a file that holds no valid record', () => {
  it('getSession removes it, except a login written between the judgement and the removal', async () => {
    const alone = setup()
    expect(await racedManager(alone.dir, () => {}).getSession()).toBeNull()
    expect(fs.existsSync(path.join(alone.dir, 'session.enc'))).toBe(false)

    const { dir, writeLogin } = setup()
    const m = racedManager(dir, () => writeLogin('bob'))
    expect(await m.getSession()).toBeNull() // what it read was unusable
    expect(await readBack(dir)).toBe('bob')

    // extendSession judges under the lock it holds: the removal neither waits for it nor is skipped.
    const held = setup()
    expect(await racedManager(held.dir, () => {}).extendSession(1000)).toBe(false)
    expect(fs.existsSync(path.join(held.dir, 'session.enc'))).toBe(false)
  })

  it('getSessionSync removes it, except a login written between the judgement and the removal', async () => {
    const alone = setup()
    expect(racedManager(alone.dir, () => {}).getSessionSync()).toBeNull()
    expect(fs.existsSync(path.join(alone.dir, 'session.enc'))).toBe(false)

    const { dir, writeLogin } = setup()
    const m = racedManager(dir, () => writeLogin('carol'))
    expect(m.getSessionSync()).toBeNull()
    expect(await readBack(dir)).toBe('carol')
  })
})
