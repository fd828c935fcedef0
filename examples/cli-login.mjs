#!/usr/bin/env node
// sealed-session example: a CLI that remembers who is logged in, on SessionManager.
//
//   node examples/cli-login.mjs login alice     log in (the session lasts 8 h)
//   node examples/cli-login.mjs whoami          who is logged in (exit 1 when nobody is)
//   node examples/cli-login.mjs logout          log out
//
// The login is one AES-256-GCM file, readable only by you, under a key bound to this machine:
// another process of the same user (the next run of this CLI) reads it back, a copy on another
// machine does not open. Set SESSION_DIR to choose where it lives (default: the manager's own).
import { SessionManager } from 'sealed-session'

const [command, user] = process.argv.slice(2)
const options = process.env.SESSION_DIR ? { dir: process.env.SESSION_DIR } : {}
const manager = new SessionManager('sealed-session-cli-example', { ttl: 8 * 3_600_000, ...options })

try {
  if (command === 'login' && user) {
    const session = await manager.login(user, `eid-${user}`, { userName: user, data: { loginFrom: 'cli' } })
    console.log(`logged in as ${session.userName} until ${session.expiresAt}`)
  } else if (command === 'whoami') {
    const session = manager.getSessionSync() // the sync read: fine at start-up
    if (session === null) {
      console.log('not logged in')
      process.exitCode = 1
    } else {
      console.log(`${session.userName} (until ${session.expiresAt})`)
    }
  } else if (command === 'logout') {
    console.log((await manager.logout()) ? 'logged out' : 'was not logged in')
  } else {
    console.error('usage: cli-login.mjs login NAME | whoami | logout')
    process.exitCode = 2
  }
} finally {
  await manager.close()
}
