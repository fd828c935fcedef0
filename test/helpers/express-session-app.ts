// The express + express-session app the Express adapter tests drive over HTTP on 127.0.0.1:
//   GET  /count   adds 1 to session.n, answers { n }
//   GET  /peek    reads only, answers { n } (null without a session)
//   GET  /slow    changes session.note, calls gate.inside(), answers { ok } once gate.release settles
//   POST /logout  destroys the session, answers { ok }
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import session from 'express-session'

declare module 'express-session' {
  interface SessionData {
    n: number
    note: string
  }
}

export interface Gate {
  inside: () => void
  release: Promise<void>
}

/** Serves the app with express-session over `options` (resave and saveUninitialized off unless
 *  given); `onCleanup` receives what stops the server. Returns the base URL. */
export async function expressSessionApp(
  options: session.SessionOptions,
  onCleanup: (cleanup: () => Promise<void>) => void,
  gate?: Gate,
): Promise<string> {
  const app = express()
  app.use(session({ resave: false, saveUninitialized: false, ...options }))
  app.get('/count', (req, res) => {
    req.session.n = (req.session.n ?? 0) + 1
    res.json({ n: req.session.n })
  })
  app.get('/peek', (req, res) => res.json({ n: req.session.n ?? null }))
  app.get('/slow', async (req, res) => {
    req.session.note = 'changed by the slow request'
    gate!.inside()
    await gate!.release
    res.json({ ok: true })
  })
  app.post('/logout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.json({ ok: true }))))
  const server = http.createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onCleanup(async () => {
    const done = new Promise((resolve) => server.close(resolve))
    server.closeAllConnections()
    await done
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
