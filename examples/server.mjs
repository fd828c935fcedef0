// sealed-session example: cookie sessions on a bare node:http server, stored encrypted on disk.
//
//   npm run build:ts && node examples/server.mjs      (then open the URL it prints)
//   PORT=8080 SESSION_SECRET=... node examples/server.mjs
//
// `/` counts your visits in the session and shows a login form (or who you are and a logout
// button). Logging in moves the session to a new id (session fixation), logging out deletes it.
// The session cookie is HttpOnly and SameSite=Lax; each session is one sealed file in the store's
// private directory.
import * as http from 'node:http'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

import { Avatar, FileSessionStore, sessionMiddleware } from '../dist/index.mjs'
// sessionMiddleware is also re-exported by the package entry (sealed-session).

// Only for trying the example: anyone who reads this file can open its sessions.
const DEV_SECRET = 'sealed-session example secret - NEVER use this in production'
const MAX_BODY = 1024

/** Starts the server; resolves to its URL and a close() that stops it and the store. */
export async function start({
  port = 0,
  host = '127.0.0.1',
  dir = path.join(os.tmpdir(), 'sealed-session-example'),
  secret,
} = {}) {
  secret ??= process.env.SESSION_SECRET
  if (!secret) {
    console.warn('\n*** WARNING: SESSION_SECRET is not set; using the built-in development secret. ***\n')
    secret = DEV_SECRET
  }
  const store = new FileSessionStore({ dir, secret })
  const sessions = sessionMiddleware({ store })

  const server = http.createServer(async (req, res) => {
    try {
      await sessions(req, res) // bare node:http: no next(), so await it
      await route(req, res)
    } catch (err) {
      console.error('request failed:', err)
      if (res.headersSent) res.destroy()
      else send(res, 500, 'text/plain; charset=utf-8', 'Internal error\n')
    }
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  const url = `http://${host}:${server.address().port}/`
  const close = async () => {
    const closed = new Promise((resolve) => server.close(resolve))
    server.closeAllConnections() // keep-alive connections would hold close() open
    await closed
    await store.close()
  }
  return { url, close }
}

async function route(req, res) {
  const { pathname } = new URL(req.url ?? '/', 'http://localhost')
  const session = req.session

  if (req.method === 'GET' && pathname === '/') {
    const visits = session.data.get('visits', 0) + 1
    session.data.set('visits', visits) // the change makes the session dirty: it is saved at the end
    return send(res, 200, 'text/html; charset=utf-8', page(session.avatar, visits))
  }
  if (req.method === 'POST' && pathname === '/login') {
    const body = await readBody(req)
    if (body === null) return send(res, 413, 'text/plain; charset=utf-8', 'Request body too large.\n')
    const form = new URLSearchParams(body)
    const name = (form.get('username') ?? '').trim()
    if (name === '' || name.length > 64)
      return send(res, 400, 'text/plain; charset=utf-8', 'A username of 1 to 64 characters, please.\n')
    // The login event: at write-back the session moves to a new id and the old one is deleted.
    session.attachAvatar(new Avatar(name))
    return redirect(res, '/')
  }
  if (req.method === 'POST' && pathname === '/logout') {
    session.invalidate() // deleted from the store, cookie cleared
    return redirect(res, '/')
  }
  send(res, 404, 'text/plain; charset=utf-8', 'Not found\n')
}

function page(avatar, visits) {
  const who = avatar.isAnonymous
    ? `<form method="post" action="/login">
         <label>Username <input name="username" autocomplete="username" required maxlength="64"></label>
         <button type="submit">Log in</button>
       </form>`
    : `<p>Logged in as <strong id="user">${escapeHtml(avatar.identity)}</strong>.</p>
       <form method="post" action="/logout"><button type="submit">Log out</button></form>`
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>sealed-session example</title></head>
<body>
  <h1>sealed-session example</h1>
  <p>Visits in this session: <span id="visits">${visits}</span></p>
  ${who}
</body>
</html>
`
}

function send(res, status, type, body) {
  res.writeHead(status, {
    'Content-Type': type,
    'Cache-Control': 'no-store', // pages hold per-session data
    'Content-Security-Policy': "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
  })
  res.end(body)
}

function redirect(res, location) {
  res.writeHead(303, { Location: location, 'Cache-Control': 'no-store' })
  res.end()
}

/** The request body as text, or null past MAX_BODY bytes. */
async function readBody(req) {
  let size = 0
  const chunks = []
  for await (const chunk of req) {
    size += chunk.length
    if (size > MAX_BODY) return null
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

// Run directly: listen on PORT (default 3000) until Ctrl-C.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { url, close } = await start({ port: Number(process.env.PORT ?? 3000) })
  console.log(`sealed-session example listening on ${url}`)
  process.once('SIGINT', () => {
    close().then(() => process.exit(0))
  })
}
