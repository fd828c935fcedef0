// A desktop CLI compiled with `bun build --compile` keeps a login: it logs in, and a second run
// of the executable reads it back. Bun embeds a Node-API addon only when it is required by a
// static path; node-gyp-build picks the addon file at run time, so the executable loads it from
// the absolute path of the package it was built from (docs/platforms.md#bun): it is not
// self-contained.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, expect, it } from 'vitest'

import { needs } from '../helpers/ci'
import { requireDist } from '../helpers/dist'
import { ROOT } from '../helpers/run-node'
import { runtimeCommand } from '../helpers/runtimes'

requireDist()
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-bun-compile-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))
const bun = runtimeCommand('bun')

it.skipIf(!needs(bun !== null, 'the bun runtime'))(
  'a bun --compile single-file CLI logs in, and its next run reads the login back',
  () => {
    const exe = path.join(tmp, 'cli')
    const built = spawnSync(
      bun![0],
      ['build', '--compile', path.join(ROOT, 'test', 'fixtures', 'runtime-compiled-cli.mjs'), '--outfile', exe],
      { cwd: tmp, encoding: 'utf8', timeout: 60_000 },
    )
    expect(built.status, built.stderr).toBe(0)
    const dir = path.join(tmp, 'session')
    const env = { ...process.env }
    delete env.SEALED_SESSION_CRYPTO
    const run = (cmd: string) => {
      const r = spawnSync(exe, [cmd, dir], { cwd: tmp, encoding: 'utf8', env, timeout: 30_000 })
      expect(r.status, r.stderr).toBe(0)
      return JSON.parse(r.stdout.trim())
    }
    expect(run('login')).toEqual({ backend: 'system-openssl', userId: 'zoe' })
    expect(run('read')).toEqual({ backend: 'system-openssl', userId: 'zoe' })
  },
  60_000,
)
