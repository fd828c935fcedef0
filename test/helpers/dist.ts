// Tests that start child processes load the package from dist/ (as a user would); `npm test`
// builds it first. Missing, they must fail loudly, not skip.
import * as fs from 'node:fs'
import * as path from 'node:path'

const ROOT = path.join(__dirname, '..', '..')

export function requireDist(): void {
  for (const f of ['index.js', 'index.mjs']) {
    if (!fs.existsSync(path.join(ROOT, 'dist', f))) {
      throw new Error('dist/ is missing: run `npm run build:ts` (npm test does) before these tests')
    }
  }
}
