// `npm run build:ts` in a checkout with no native addon (a clone installed with --ignore-scripts:
// no build/, no prebuilds/) builds dist/, ESM entries included; with the addon added afterwards,
// each ESM entry exports exactly what its CommonJS twin does, the very same objects.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT, runNode } from '../helpers/run-node'

const ENTRIES = ['index', 'express', 'express-session', 'fastify', 'fetch', 'express-request']

describe('build:ts without the native addon', () => {
  let work: string
  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-build-ts-'))
    for (const f of ['package.json', 'tsconfig.json', 'scripts/build-ts.mjs'])
      fs.cpSync(path.join(ROOT, f), path.join(work, f))
    fs.cpSync(path.join(ROOT, 'lib'), path.join(work, 'lib'), { recursive: true })
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'))
  })
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

  it('builds every entry, then its ESM and CommonJS faces agree once the addon is there', async () => {
    const built = await runNode([path.join(work, 'scripts', 'build-ts.mjs')], { timeoutMs: 240_000 })
    expect(built.stderr).toBe('')
    expect(built.code).toBe(0)
    for (const entry of ENTRIES) {
      for (const ext of ['js', 'mjs', 'd.ts', 'd.mts'])
        expect(fs.existsSync(path.join(work, 'dist', `${entry}.${ext}`)), `${entry}.${ext}`).toBe(true)
    }
    // The condition under test held: this checkout cannot load the addon.
    const load = await runNode(['-e', `require(${JSON.stringify(path.join(work, 'dist', 'index.js'))})`])
    expect(load.code).not.toBe(0)
    expect(load.stderr).toContain('No native build was found')

    // Now give it this repository's addon and compare both faces of every entry.
    const addon = require('node-gyp-build').path(ROOT) as string
    fs.mkdirSync(path.join(work, 'build', 'Release'), { recursive: true })
    fs.symlinkSync(addon, path.join(work, 'build', 'Release', 'sealed_session.node'))
    const compare = `
      import { createRequire } from 'node:module'
      const require = createRequire(${JSON.stringify(path.join(work, 'dist', 'x.js'))})
      const out = {}
      for (const entry of ${JSON.stringify(ENTRIES)}) {
        const cjs = require('./' + entry + '.js')
        const esm = await import(${JSON.stringify(path.join(work, 'dist'))} + '/' + entry + '.mjs')
        const names = (o) => Object.keys(o).filter((n) => n !== 'default' && n !== '__esModule').sort()
        const same = names(cjs).every((n) => esm[n] === cjs[n])
        out[entry] = { cjs: names(cjs), esm: names(esm), same, defaultOk: esm.default === ('default' in cjs ? cjs.default : cjs) }
      }
      console.log(JSON.stringify(out))`
    const ran = await runNode(['--input-type=module', '-e', compare])
    expect(ran.stderr).toBe('')
    const found = JSON.parse(ran.stdout) as Record<
      string,
      { cjs: string[]; esm: string[]; same: boolean; defaultOk: boolean }
    >
    for (const entry of ENTRIES) {
      expect(found[entry].cjs.length, entry).toBeGreaterThan(0)
      expect(found[entry], entry).toEqual({ cjs: found[entry].cjs, esm: found[entry].cjs, same: true, defaultOk: true })
    }
    expect(found['express-session'].cjs).toEqual(found.express.cjs)
  }, 300_000)
})
