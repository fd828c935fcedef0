// sealed-session demo: a persisted, encrypted, machine-bound login for a desktop or CLI app.
//
//   npm run demo            (builds dist/ and runs this file)
//   node examples/demo.mjs  (once dist/ is built)
//
// Process A (this one) logs a user in; process B (this same file, run again with --read <dir>)
// reads the session back from disk; then A extends it, shows what the file looks like and logs out.
// Everything happens in a fresh temp directory that is removed at the end.
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { SessionManager } from '../dist/index.mjs'

const APP = 'sealed-session-demo'
const HERE = fileURLToPath(import.meta.url)

// ---------------------------------------------------------------------------------------------
// Process B: `node examples/demo.mjs --read <dir>` prints what it finds as JSON.
if (process.argv[2] === '--read') {
  const dir = process.argv[3]
  const manager = new SessionManager(APP, { dir })
  const atStartup = manager.getSessionSync() // the sync twin, for start-up paths
  const session = await manager.getSession()
  await manager.close()
  process.stdout.write(JSON.stringify({ pid: process.pid, atStartup, session }))
  process.exit(0)
}

// ---------------------------------------------------------------------------------------------
// Process A.
const user = {
  userId: 'doctor-abc123',
  eid: 'dr_zhang',
  userName: '张医生',
  data: { department: '心内科', room: 'B-312' },
}
const line = (s = '') => console.log(s)
const field = (name, value) => console.log(`   ${(name + ':').padEnd(15)} ${value}`)
const iso = (ms) => (ms === 0 ? 'never' : new Date(ms).toISOString())

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sealed-session-demo-'))
const dir = path.join(tmp, 'sessions')
const manager = new SessionManager(APP, { dir })

try {
  line('sealed-session demo: one encrypted login per app and OS user, kept across restarts')
  line()

  // 1. Log in.
  const session = await manager.login(user.userId, user.eid, { userName: user.userName, data: user.data })
  line(`1. Process A (pid ${process.pid}) logs in`)
  field('app', APP)
  field('key', 'machine-bound (no secret): HKDF-SHA256 of the machine id, app name and uid')
  field('session file', manager.sessionFile)
  field('user', `${session.userName} (userId ${session.userId}, eid ${session.eid})`)
  field('data', JSON.stringify(session.data))
  field('created', session.createdAt)
  field('expires', `${session.expiresAt} (default ttl ${manager.ttl / 3_600_000} h)`)
  line()

  // 2. A second process reads it back.
  const { stdout } = await promisify(execFile)(process.execPath, [HERE, '--read', dir])
  const fromB = JSON.parse(stdout)
  line(`2. Process B (pid ${fromB.pid}, a fresh \`node examples/demo.mjs --read <dir>\`) reads the file`)
  field(
    'at start-up',
    `getSessionSync() -> ${fromB.atStartup ? `${fromB.atStartup.userName} (${fromB.atStartup.userId})` : 'null'}`,
  )
  field('getSession()', JSON.stringify(fromB.session))
  const same =
    JSON.stringify(fromB.session) === JSON.stringify(session) &&
    JSON.stringify(fromB.atStartup) === JSON.stringify(session)
  field('same as A', same ? 'yes' : 'NO')
  if (!same) throw new Error('process B did not read what process A wrote')
  line()

  // 3. Extend by 30 minutes: added to the current expiry, not to now.
  const before = (await manager.getSession()).expiresAt
  const extended = await manager.extendSession(30 * 60_000)
  const after = (await manager.getSession()).expiresAt
  line('3. Extend by 30 min')
  field('extendSession', String(extended))
  field('old expiry', before)
  field('new expiry', `${after} (+${(Date.parse(after) - Date.parse(before)) / 60_000} min on the old expiry)`)
  line()

  // 4. The file on disk.
  const bytes = fs.readFileSync(manager.sessionFile)
  const st = fs.statSync(manager.sessionFile)
  const octal = (m) => '0' + (m & 0o777).toString(8)
  line('4. The file on disk')
  field('path', manager.sessionFile)
  field('mode', `${octal(st.mode)} (directory ${octal(fs.statSync(dir).mode)})`)
  field('size', `${bytes.length} bytes = 40 header + ${bytes.length - 56} ciphertext + 16 GCM tag`)
  line('   header, readable without the key (and authenticated: it is AAD):')
  field('  magic', JSON.stringify(bytes.subarray(0, 4).toString('latin1')))
  field('  version', bytes[4])
  field('  flags', `${bytes[5]} (${bytes[5] & 1 ? 'bound to this boot' : 'not bound to boot'})`)
  field('  reserved', bytes.readUInt16BE(6))
  field('  key id', bytes.subarray(8, 12).toString('hex'))
  field('  created', iso(Number(bytes.readBigUInt64BE(12))))
  field('  expires', iso(Number(bytes.readBigUInt64BE(20))))
  field('  nonce', bytes.subarray(28, 40).toString('hex'))
  field(
    '  as hex',
    bytes
      .subarray(0, 40)
      .toString('hex')
      .replace(/(.{8})/g, '$1 ')
      .trim(),
  )
  line('   plaintext check (UTF-8 bytes searched in the file):')
  const plain = [user.userId, user.eid, user.userName, user.data.department, user.data.room]
  let leaked = false
  for (const s of plain) {
    const found = bytes.includes(Buffer.from(s, 'utf8'))
    leaked ||= found
    line(`     ${found ? 'FOUND IN CLEAR' : 'not found'}: ${JSON.stringify(s)}`)
  }
  if (leaked) throw new Error('plaintext found in the session file')
  line()

  // 5. Log out.
  line('5. Logout')
  field('logout()', String(await manager.logout()))
  field('file exists', String(fs.existsSync(manager.sessionFile)))
  field('logout() again', String(await manager.logout()))
  field('isLoggedIn()', String(await manager.isLoggedIn()))
} finally {
  await manager.close()
  fs.rmSync(tmp, { recursive: true, force: true })
  line()
  line(`Removed the temp directory ${tmp}.`)
}
