// TypeScript 7 (the typescript7 devDependency) compiles the library and what a user compiles:
// the node16 and bundler programs of scripts/check-types.mjs (TypeScript 7 has no node10
// resolution). A file of its own so a second test worker runs it beside types.test.ts.
import { execFile } from 'node:child_process'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { requireDist } from '../helpers/dist'

const run = promisify(execFile)
const ROOT = path.join(__dirname, '..', '..')
const script = path.join(ROOT, 'scripts', 'check-types.mjs')

describe('types as users compile them, with TypeScript 7', () => {
  it('the same programs, blocks and the library itself compile with TypeScript 7', async () => {
    requireDist()
    const tsc7 = path.join(ROOT, 'node_modules', 'typescript7', 'bin', 'tsc')
    const { stdout: version } = await run(process.execPath, [tsc7, '--version'])
    expect(version).toMatch(/^Version 7\./)
    await run(process.execPath, [tsc7, '--noEmit', '-p', ROOT], { cwd: ROOT, maxBuffer: 16 << 20 })
    // TypeScript 7 has no node10 resolution: the node16 and bundler programs are the ones it runs.
    const { stdout } = await run(process.execPath, [script, '--tsc', tsc7], { cwd: ROOT, maxBuffer: 16 << 20 })
    expect(stdout).toMatch(/ok {3}fixtures-node16-esm\n/)
    expect(stdout).toMatch(/ok {3}markdown-bundler\n/)
    expect(stdout).toContain('check-types: ok')
  }, 600_000)
})
