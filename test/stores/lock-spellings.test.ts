// In-process lock queues are keyed by the directory's device and inode, not its spelling: stores
// and managers on `dir`, `dir/` or a symlinked parent of one directory share one queue per lock
// file. Keyed by the string, each spelling's waiters sat in flock on libuv's 4 pool threads
// while the other spelling's holder needed one: the process hung for good. Each case runs in a
// child process with a deadline (killed, and failed, if it does not finish).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { requireDist } from '../helpers/dist'
import { lastJsonLine, ROOT, runNode } from '../helpers/run-node'

const DEADLINE_MS = 20_000
// libuv's default pool: the deadlock needs its 4 threads filled, whatever the runner sets.
const env = { ...process.env, UV_THREADPOOL_SIZE: '4' }

let root: string
beforeAll(() => {
  requireDist()
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-spellings-'))
})
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

async function finishes<T>(fixture: string, args: string[]): Promise<T> {
  const ran = await runNode([path.join(ROOT, 'test/fixtures', fixture), ...args], { env, timeoutMs: DEADLINE_MS })
  expect(ran.code, `the child did not finish within ${DEADLINE_MS} ms (killed) or failed: ${ran.stderr}`).toBe(0)
  return lastJsonLine<T>(ran)
}

describe('one directory, several spellings, one process', () => {
  it(
    'two FileSessionStores on `dir` and `dir/`: 16 saves then 16 deletes over 8 stripes finish',
    async () => {
      const dir = path.join(root, 'store')
      const seen = await finishes<{ saved: number; deleted: number; left: number }>('file-store-spellings.mjs', [
        dir,
        `${dir}/`,
      ])
      expect(seen).toEqual({ saved: 16, deleted: 16, left: 0 })
    },
    DEADLINE_MS + 10_000,
  )

  it(
    'SessionManagers on six spellings (symlinked parents): concurrent logins, extensions and logouts finish',
    async () => {
      const real = path.join(root, 'real')
      fs.mkdirSync(path.join(real, 'app'), { recursive: true, mode: 0o700 })
      const dirs = [path.join(real, 'app')]
      for (let i = 0; i < 5; i++) {
        fs.symlinkSync(real, path.join(root, `alias${i}`))
        dirs.push(path.join(root, `alias${i}`, 'app'))
      }
      const seen = await finishes<{ user: string | null; removed: number }>('manager-spellings.mjs', dirs)
      // One session file: one login survives, and one logout removes it.
      expect(seen.user).toMatch(/^user-\d$/)
      expect(seen.removed).toBe(1)
    },
    DEADLINE_MS + 10_000,
  )
})
