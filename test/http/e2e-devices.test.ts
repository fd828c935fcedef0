// The "your devices" example (examples/devices.mjs) in headless chromium: two browser contexts
// are two devices of one user. listSessions shows both with their times, one device signs the
// other out, then signs out all others (revokeSessions); no page ever holds a session id.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { launchChromium, runBrowserTests, CHROMIUM } from '../helpers/chromium'
import { requireDist } from '../helpers/dist'
import { startExample, type RunningExample } from '../helpers/example-process'

if (!runBrowserTests) console.warn(`e2e-devices: skipped, ${CHROMIUM} is not installed (apt-get install chromium)`)

describe.skipIf(!runBrowserTests)('devices page in headless chromium', () => {
  let browser: Browser
  let server: RunningExample | undefined
  let dir: string

  beforeAll(async () => {
    requireDist()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-devices-'))
    server = await startExample('devices.mjs', { dir, secret: 'devices test secret, at least 32 characters' })
    browser = await launchChromium()
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await server?.stop()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  async function device(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(server!.url)
    return { context, page }
  }
  async function logIn(page: Page, name: string) {
    await page.fill('input[name=username]', name)
    await Promise.all([page.waitForURL(server!.url), page.click('button[type=submit]')])
    expect(await page.textContent('#user')).toBe(name)
  }
  const rows = (page: Page) => page.locator('tr.device')
  const sid = async (context: BrowserContext) => (await context.cookies()).find((c) => c.name === 'sid')?.value

  it('lists the devices, signs one out, then all others', async () => {
    const a = await device()
    const b = await device()
    const other = await device()
    try {
      await logIn(a.page, 'alice')
      await logIn(b.page, 'alice')
      await logIn(other.page, 'bob') // another user's session is never listed nor revoked
      await a.page.reload()
      expect(await rows(a.page).count()).toBe(2)
      expect(await a.page.locator('tr.device.current').count()).toBe(1)
      for (const cell of await a.page.locator('td.created, td.seen').allTextContents()) {
        expect(Date.now() - Date.parse(cell)).toBeLessThan(60_000) // ISO times, just now
      }
      const html = await a.page.content()
      for (const id of [await sid(a.context), await sid(b.context)]) expect(html).not.toContain(id!)

      // Sign out the other device from this one.
      await Promise.all([a.page.waitForURL(server!.url), a.page.click('tr.device:not(.current) button')])
      expect(await rows(a.page).count()).toBe(1)
      await b.page.reload()
      expect(await b.page.isVisible('input[name=username]')).toBe(true)

      // B signs in again; A signs out all other devices.
      await logIn(b.page, 'alice')
      await a.page.reload()
      expect(await rows(a.page).count()).toBe(2)
      await Promise.all([a.page.waitForURL(server!.url), a.page.click('#sign-out-others')])
      expect(await rows(a.page).count()).toBe(1)
      await b.page.reload()
      expect(await b.page.isVisible('input[name=username]')).toBe(true)

      // Bob kept his session throughout; A is still signed in.
      await other.page.reload()
      expect(await other.page.textContent('#user')).toBe('bob')
      expect(await rows(other.page).count()).toBe(1)
      await a.page.reload()
      expect(await a.page.textContent('#user')).toBe('alice')
    } finally {
      for (const d of [a, b, other]) await d.context.close()
    }
  }, 60_000)
})
