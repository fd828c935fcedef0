// sealed-session example: Hono on @hono/node-server, with withSession from sealed-session/fetch.
// The same handler runs unchanged on Bun.serve, Deno.serve or a Next.js route handler: it takes
// a Request and returns a Response.
//
//   node examples/hono.mjs           (PORT, SESSION_SECRET and SESSION_DIR optional)
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import * as os from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { Avatar, FileSessionStore } from 'sealed-session'
import { withSession } from 'sealed-session/fetch'

export async function start({
  port = 0,
  dir = path.join(os.tmpdir(), 'sealed-session-hono-example'),
  secret = process.env.SESSION_SECRET,
} = {}) {
  if (!secret) throw new Error('set SESSION_SECRET (32+ characters)')
  const store = new FileSessionStore({ dir, secret })

  const handle = withSession({ store }, async (request, session) => {
    const url = new URL(request.url)
    if (request.method === 'POST' && url.pathname === '/login') {
      const name = url.searchParams.get('name') ?? ''
      if (!/^[\w.-]{1,64}$/.test(name))
        return Response.json({ error: 'name: 1 to 64 letters, digits, . _ -' }, { status: 400 })
      session.attachAvatar(new Avatar(name, ['user'])) // a new id at write-back
      return Response.json({ user: name })
    }
    if (request.method === 'POST' && url.pathname === '/logout') {
      session.invalidate() // deleted, cookie cleared
      return Response.json({ user: null })
    }
    const visits = session.data.get('visits', 0) + 1
    session.data.set('visits', visits)
    return Response.json({ visits, user: session.avatar.isAnonymous ? null : session.avatar.identity })
  })

  const app = new Hono()
  app.get('/', (c) => handle(c.req.raw))
  app.post('/login', (c) => handle(c.req.raw))
  app.post('/logout', (c) => handle(c.req.raw))

  const server = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => resolve(s))
  })
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: async () => {
      await new Promise((resolve) => {
        server.close(resolve)
        server.closeAllConnections?.()
      })
      await store.close()
    },
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { url } = await start({ port: Number(process.env.PORT ?? 3000), dir: process.env.SESSION_DIR })
  console.log(`listening on ${url}`)
}
