// Redis suites need server binaries: under CI=true a missing one fails the suite; locally the
// suite is skipped with a message naming the Debian package.
import { it } from 'vitest'
import { findBinary } from './redis-server'

const inCI = process.env.CI === 'true' || process.env.CI === '1'

/** True when every binary is on PATH; otherwise registers a failing (CI) or skipped test. */
export function haveRedisBinaries(suite: string, binaries: Record<string, string>): boolean {
  const missing = Object.keys(binaries).filter((b) => findBinary(b) === null)
  if (missing.length === 0) return true
  const packages = [...new Set(missing.map((b) => binaries[b]))].join(' ')
  if (inCI) {
    it(`${missing.join(', ')} installed (CI must apt-get install ${packages})`, () => {
      throw new Error(`${missing.join(', ')} not found on PATH: .ci/run must install ${packages}`)
    })
  } else {
    console.warn(`[${suite}] ${missing.join(', ')} not installed: skipping (apt-get install ${packages})`)
    it.skip(`${suite} (${missing.join(', ')} not installed)`, () => {})
  }
  return false
}
