// sealed-session example: a "your devices" page. A signed-in user sees every session of theirs
// (created and last-seen times), and can sign out one device or all the others. Express with
// sessionMiddleware and a FileSessionStore, whose identity index answers listSessions and
// revokeSessions.
//
//   node examples/devices.mjs       (then open the URL in two browsers; PORT, SESSION_SECRET optional)
//
// A page never shows a session id (an id is a bearer credential): each device is named by a
// short hash of its id, which cannot be turned back into the id.
import express from 'express'
import { createHash } from 'node:crypto'
import * as os from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { Avatar, FileSessionStore } from 'sealed-session'
import { sessionMiddleware } from 'sealed-session/middleware'

// Only for trying the example: anyone who reads this file can open its sessions.
const DEV_SECRET = 'sealed-session example secret - NEVER use this in production'

export async function start({
  port = 0,
  dir = path.join(os.tmpdir(), 'sealed-session-devices-example'),
  secret = process.env.SESSION_SECRET,
} = {}) {
  if (!secret) {
    console.warn('\n*** WARNING: SESSION_SECRET is not set; using the built-in development secret. ***\n')
    secret = DEV_SECRET
  }
  const store = new FileSessionStore({ dir, secret })
  const app = express()
  app.use(express.urlencoded({ extended: false, limit: 1024 }))
  app.use(sessionMiddleware({ store }))
  app.use((_req, res, next) => {
    res.set({
      'cache-control': 'no-store',
      'content-security-policy': "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
    })
    next()
  })

  app.get('/', async (req, res) => {
    const { avatar } = req.session
    if (avatar.isAnonymous) return res.type('html').send(page(loginForm()))
    const devices = await store.listSessions(avatar.identity)
    res.type('html').send(page(devicesTable(avatar.identity, devices, req.session.id)))
  })
  app.post('/login', (req, res) => {
    const name = String(req.body?.username ?? '').trim()
    if (name === '' || name.length > 64)
      return res.status(400).type('text').send('A username of 1 to 64 characters, please.\n')
    req.session.attachAvatar(new Avatar(name)) // the login: a new id, indexed under this identity
    res.redirect(303, '/')
  })
  app.post('/devices/sign-out', async (req, res) => {
    const { avatar } = req.session
    if (avatar.isAnonymous) return res.redirect(303, '/')
    // Only a session of this user's own list can be signed out from here.
    const target = (await store.listSessions(avatar.identity)).find((d) => handle(d.id) === req.body?.device)
    if (target?.id === req.session.id) req.session.invalidate()
    else if (target) await store.delete(target.id)
    res.redirect(303, '/')
  })
  app.post('/devices/sign-out-others', async (req, res) => {
    const { avatar } = req.session
    if (!avatar.isAnonymous) await store.revokeSessions(avatar.identity, { except: req.session.id })
    res.redirect(303, '/')
  })
  app.post('/logout', (req, res) => {
    req.session.invalidate()
    res.redirect(303, '/')
  })

  const server = await new Promise((resolve, reject) => {
    const s = app.listen(port, '127.0.0.1', (err) => (err ? reject(err) : resolve(s)))
  })
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: async () => {
      await new Promise((resolve) => {
        server.close(resolve)
        server.closeAllConnections()
      })
      await store.close()
    },
  }
}

/** A device's name on the page: 16 characters of the SHA-256 of its session id. */
function handle(id) {
  return createHash('sha256').update(id).digest('base64url').slice(0, 16)
}

function devicesTable(identity, devices, currentId) {
  const rows = devices
    .sort((a, b) => b.lastAccess - a.lastAccess)
    .map((d) => {
      const current = d.id === currentId
      const action = current
        ? 'this device'
        : `<form method="post" action="/devices/sign-out"><input type="hidden" name="device" value="${handle(d.id)}"><button type="submit">Sign out</button></form>`
      return `<tr class="device${current ? ' current' : ''}" data-device="${handle(d.id)}">
        <td class="created">${new Date(d.createdAt).toISOString()}</td>
        <td class="seen">${new Date(d.lastAccess).toISOString()}</td>
        <td>${action}</td></tr>`
    })
    .join('\n')
  return `<p>Signed in as <strong id="user">${escapeHtml(identity)}</strong>.</p>
  <h2>Your devices</h2>
  <table id="devices"><tr><th>signed in</th><th>last seen</th><th></th></tr>
  ${rows}
  </table>
  <form method="post" action="/devices/sign-out-others"><button type="submit" id="sign-out-others">Sign out all other devices</button></form>
  <form method="post" action="/logout"><button type="submit" id="logout">Log out</button></form>`
}

function loginForm() {
  return `<form method="post" action="/login">
    <label>Username <input name="username" autocomplete="username" required maxlength="64"></label>
    <button type="submit">Log in</button>
  </form>`
}

function page(body) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Your devices - sealed-session example</title></head>
<body>
  <h1>sealed-session: your devices</h1>
  ${body}
</body>
</html>
`
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { url } = await start({ port: Number(process.env.PORT ?? 3000) })
  console.log(`sealed-session devices example listening on ${url}`)
}
