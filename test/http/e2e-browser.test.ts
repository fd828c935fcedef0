// The example login page, on bare node:http (examples/server.mjs) and on Fastify
// (examples/fastify.mjs), over dist/, in Debian's headless chromium, driven by playwright-core:
// log in, reload, read document.cookie, log out. No browser download: the
// suite is skipped locally when /usr/bin/chromium is missing, and fails in CI (`.ci/run`
// installs it), so a broken install cannot pass as a green run.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { CHROMIUM, launchChromium, runBrowserTests } from '../helpers/chromium'
import { requireDist } from '../helpers/dist'
import { startExample, type RunningExample } from '../helpers/example-process'

if (!runBrowserTests) console.warn(`e2e-browser: skipped, ${CHROMIUM} is not installed (apt-get install chromium)`)

describe.skipIf(!runBrowserTests).each(['server.mjs', 'fastify.mjs'])('example %s in headless chromium', (example) => {
  let browser: Browser
  let server: RunningExample | undefined
  let url: string
  let dir: string

  beforeAll(async () => {
    requireDist()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-e2e-'))
    server = await startExample(example, { dir, secret: 'e2e test secret, at least 32 characters' })
    url = server.url
    browser = await launchChromium()
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await server?.stop()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  const visits = async (page: Page) => Number(await page.textContent('#visits'))
  const sessionCookies = async (page: Page) => (await page.context().cookies()).filter((c) => c.name === 'sid')

  it('logs in, keeps counting across reloads, hides the cookie from scripts, logs out', async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    try {
      await page.goto(url)
      expect(await visits(page)).toBe(1)
      expect(await page.isVisible('input[name=username]')).toBe(true)
      const anonymous = (await sessionCookies(page))[0]

      await page.fill('input[name=username]', 'Zhang <b>Wei</b>')
      await Promise.all([page.waitForURL(url), page.click('button[type=submit]')])
      expect(await page.textContent('#user')).toBe('Zhang <b>Wei</b>') // escaped, shown as text
      expect(await visits(page)).toBe(2) // the counter came along through login
      const [loggedIn] = await sessionCookies(page)
      expect(loggedIn.value).not.toBe(anonymous.value) // new id at login
      expect(loggedIn.httpOnly).toBe(true)
      expect(loggedIn.sameSite).toBe('Lax')
      expect(loggedIn.path).toBe('/')
      expect(loggedIn.secure).toBe(false)

      await page.reload()
      expect(await visits(page)).toBe(3)
      await page.reload()
      expect(await visits(page)).toBe(4)
      expect(await page.textContent('#user')).toBe('Zhang <b>Wei</b>')

      // HttpOnly: the page's own JavaScript cannot see the session cookie.
      const fromScript = await page.evaluate(() => document.cookie)
      expect(fromScript).not.toContain('sid=')
      expect(fromScript).not.toContain(loggedIn.value)

      await Promise.all([page.waitForURL(url), page.click('text=Log out')])
      expect(await page.isVisible('input[name=username]')).toBe(true)
      expect(await visits(page)).toBe(1) // a fresh session: the old one is gone
      const after = await sessionCookies(page)
      expect(after.map((c) => c.value)).not.toContain(loggedIn.value)
    } finally {
      await context.close()
    }
  }, 30_000)
})
