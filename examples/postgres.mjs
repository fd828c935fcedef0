// sealed-session example: Express with sessionMiddleware and sessions in PostgreSQL.
//
//   DATABASE_URL=postgres://… SESSION_SECRET=… node examples/postgres.mjs       (PORT optional)
//
// GET / counts your visits; POST /login?name=NAME logs in (the session moves to a new id);
// POST /logout deletes the session and clears the cookie; GET /devices lists your sessions and
// POST /logout-others ends all of them but this one, on every app server sharing the database.
import express from 'express'
import pg from 'pg'
import { pathToFileURL } from 'node:url'
import { Avatar, PostgresSessionStore } from 'sealed-session'
import { sessionMiddleware } from 'sealed-session/middleware'

export async function start({
  port = 0,
  databaseUrl = process.env.DATABASE_URL,
  secret = process.env.SESSION_SECRET,
  table = 'sealed_sessions',
} = {}) {
  if (!databaseUrl) throw new Error('set DATABASE_URL (postgres://user:password@host/db)')
  if (!secret) throw new Error('set SESSION_SECRET (32+ characters)')
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10, connectionTimeoutMillis: 1_000 })
  pool.on('error', (err) => console.warn('postgres:', err.message)) // a broken idle connection must not end the process
  const store = new PostgresSessionStore({ client: pool, secret, table })
  await store.init() // creates the tables if missing (or run PostgresSessionStore.schema() in a migration)
  const app = express()
  app.use(sessionMiddleware({ store }))
  const user = (req) => (req.session.avatar.isAnonymous ? null : req.session.avatar.identity)
  app.get('/', (req, res) => {
    const visits = req.session.data.get('visits', 0) + 1
    req.session.data.set('visits', visits)
    res.json({ visits, user: user(req) })
  })
  app.post('/login', (req, res) => {
    const name = String(req.query.name ?? '')
    if (!/^[\w.-]{1,64}$/.test(name)) return res.status(400).json({ error: 'name: 1 to 64 letters, digits, . _ -' })
    req.session.attachAvatar(new Avatar(name, ['user']))
    res.json({ user: name })
  })
  app.get('/devices', async (req, res, next) => {
    if (user(req) === null) return res.status(401).json({ error: 'log in first' })
    try {
      res.json({ sessions: (await store.listSessions(user(req))).length })
    } catch (err) {
      next(err)
    }
  })
  app.post('/logout-others', async (req, res, next) => {
    if (user(req) === null) return res.status(401).json({ error: 'log in first' })
    try {
      res.json({ ended: await store.revokeSessions(user(req), { except: req.session.id }) })
    } catch (err) {
      next(err)
    }
  })
  app.post('/logout', (req, res) => {
    req.session.invalidate()
    res.json({ user: null })
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
      await pool.end()
    },
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { url } = await start({ port: Number(process.env.PORT ?? 3000) })
  console.log(`listening on ${url}`)
}
