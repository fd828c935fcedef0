// Debian's chromium (no browser download) through playwright-core, for the browser tests. The
// suites are skipped locally when it is missing, and fail in CI (`.ci/run` installs it).
import * as fs from 'node:fs'
import type { Browser } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
export const haveChromium = fs.existsSync(CHROMIUM)
export const runBrowserTests = haveChromium || process.env.CI === 'true'

export async function launchChromium(): Promise<Browser> {
  if (!haveChromium) throw new Error(`${CHROMIUM} is not installed (apt-get install chromium)`)
  const { chromium } = await import('playwright-core')
  return chromium.launch({
    executablePath: CHROMIUM,
    // Root in a container: no sandbox. The networking flags keep chromium from calling home on
    // a closed network. Playwright gives the browser a fresh temporary user-data-dir.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  })
}
