// sealed-session example: the login page of server.mjs, on Fastify 5 with the sealed-session
// plugin and an encrypted file store.
//
//   node examples/fastify.mjs       (then open the URL it prints; PORT, SESSION_SECRET optional)
//
// `/` counts your visits and shows a login form (or who you are and a logout button). Logging in
// moves the session to a new id, logging out deletes it. The cookie is HttpOnly and SameSite=Lax.
import Fastify from 'fastify'
import * as os from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { Avatar, FileSessionStore } from 'sealed-session'
import sealedSession from 'sealed-session/fastify'

// Only for trying the example: anyone who reads this file can open its sessions.
const DEV_SECRET = 'sealed-session example secret - NEVER use this in production'

export async function start({
  port = 0,
  host = '127.0.0.1',
  dir = path.join(os.tmpdir(), 'sealed-session-fastify-example'),
  secret = process.env.SESSION_SECRET,
} = {}) {
  if (!secret) {
    console.warn('\n*** WARNING: SESSION_SECRET is not set; using the built-in development secret. ***\n')
    secret = DEV_SECRET
  }
  const store = new FileSessionStore({ dir, secret })
  const app = Fastify()
  // HTML forms post application/x-www-form-urlencoded, which Fastify does not parse by itself.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 1024 },
    (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body)))
    },
  )
  await app.register(sealedSession, { store })

  app.get('/', async (request, reply) => {
    const visits = request.session.data.get('visits', 0) + 1
    request.session.data.set('visits', visits) // dirty: saved before the response goes out
    return html(reply, page(request.session.avatar, visits))
  })
  app.post('/login', async (request, reply) => {
    const name = String(request.body?.username ?? '').trim()
    if (name === '' || name.length > 64)
      return reply.code(400).type('text/plain').send('A username of 1 to 64 characters, please.\n')
    request.session.attachAvatar(new Avatar(name)) // the login: a new id at write-back
    return reply.code(303).header('cache-control', 'no-store').redirect('/')
  })
  app.post('/logout', async (request, reply) => {
    request.session.invalidate() // deleted from the store, cookie cleared
    return reply.code(303).header('cache-control', 'no-store').redirect('/')
  })

  const address = await app.listen({ port, host })
  return {
    url: `${address}/`,
    close: async () => {
      await app.close()
      await store.close()
    },
  }
}

function html(reply, body) {
  return reply
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store') // pages hold per-session data
    .header('content-security-policy', "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
    .send(body)
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
<head><meta charset="utf-8"><title>sealed-session example (Fastify)</title></head>
<body>
  <h1>sealed-session example</h1>
  <p>Visits in this session: <span id="visits">${visits}</span></p>
  ${who}
</body>
</html>
`
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { url } = await start({ port: Number(process.env.PORT ?? 3000) })
  console.log(`sealed-session Fastify example listening on ${url}`)
}
