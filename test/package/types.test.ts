// What a TypeScript user compiles: scripts/check-types.mjs runs `tsc --strict` over the typed
// consumer programs (test/fixtures/types, under node10, node16 CJS/ESM and bundler resolution,
// with and without @types/express-session) and over every ```ts block of the README and docs/.
// A broken block must make it fail, naming its page and line.
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { requireDist } from '../helpers/dist'

const run = promisify(execFile)
const ROOT = path.join(__dirname, '..', '..')
const script = path.join(ROOT, 'scripts', 'check-types.mjs')

describe('types as users compile them', () => {
  it('the typed programs and every TypeScript block of the README and docs/ compile with tsc --strict', async () => {
    requireDist()
    const { stdout } = await run(process.execPath, [script], { cwd: ROOT, maxBuffer: 16 << 20 })
    expect(stdout).toMatch(/ok {3}fixtures-node10\n/)
    expect(stdout).toMatch(/ok {3}with-express-session-bundler\n/)
    expect(stdout).toMatch(/ok {3}markdown-bundler\n/)
    expect(stdout).toContain('check-types: ok')
  }, 600_000)

  it('fails on a README block that does not type-check, naming its line', async () => {
    requireDist()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-readme-'))
    try {
      const readme = path.join(dir, 'README.md')
      // The 0.1 README's middleware line: get() gave BagValue, so `+ 1` did not compile.
      fs.writeFileSync(
        readme,
        "# x\n\n```ts\nimport { Bag } from 'sealed-session'\nconst bag = new Bag()\nconst n: number = (bag.get('visits') ?? 0) + 1\n```\n",
      )
      const failed = run(process.execPath, [script, '--only-readme', '--readme', readme], { cwd: ROOT })
      await expect(failed).rejects.toMatchObject({
        code: 1,
        stdout: expect.stringMatching(/FAIL markdown-bundler\nreadme-4\.ts\(3,[\s\S]*TS2365/),
      })
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)

  it('fails on a docs page block that does not type-check, naming the page and line', async () => {
    requireDist()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-docs-'))
    try {
      const page = path.join(dir, 'guide.md')
      fs.writeFileSync(
        page,
        "# Guide\n\nText.\n\n```ts\nimport { MemorySessionStore } from 'sealed-session'\nnew MemorySessionStore({ ttl: '1h' })\n```\n",
      )
      const failed = run(process.execPath, [script, '--only-markdown', '--md', page], { cwd: ROOT })
      await expect(failed).rejects.toMatchObject({
        code: 1,
        stdout: expect.stringMatching(/FAIL markdown-bundler\nguide-6\.ts\(2,[\s\S]*TS2322/),
      })
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)

  it('sealed-session/express is the deprecated name: each of its exports is marked so in editors', () => {
    requireDist()
    const consumer = (entry: string): string =>
      `import { ExpressSessionStore, expressId, type ExpressSessionStoreOptions } from './dist/${entry}'\n` +
      'export const used: [typeof ExpressSessionStore, typeof expressId, ExpressSessionStoreOptions?] = [ExpressSessionStore, expressId]\n'
    const files: Record<string, string> = {
      [path.join(ROOT, 'old.ts')]: consumer('express'),
      [path.join(ROOT, 'new.ts')]: consumer('express-session'),
    }
    const service = ts.createLanguageService({
      getScriptFileNames: () => Object.keys(files),
      getScriptVersion: () => '1',
      getScriptSnapshot: (f) =>
        f in files
          ? ts.ScriptSnapshot.fromString(files[f])
          : fs.existsSync(f)
            ? ts.ScriptSnapshot.fromString(fs.readFileSync(f, 'utf8'))
            : undefined,
      getCurrentDirectory: () => ROOT,
      getCompilationSettings: () => ({
        module: ts.ModuleKind.CommonJS,
        moduleResolution: ts.ModuleResolutionKind.Node10,
        types: ['node'],
        skipLibCheck: true,
        strict: true,
        noEmit: true,
      }),
      getDefaultLibFileName: (o) => ts.getDefaultLibFilePath(o),
      fileExists: (f) => f in files || ts.sys.fileExists(f),
      readFile: (f) => files[f] ?? ts.sys.readFile(f),
    })
    const deprecated = (f: string): string[] =>
      service
        .getSuggestionDiagnostics(f)
        .filter((d) => d.code === 6385)
        .map((d) => files[f].slice(d.start!, d.start! + d.length!).replace(/^type /, ''))
    expect(service.getSemanticDiagnostics(path.join(ROOT, 'old.ts'))).toEqual([])
    expect(new Set(deprecated(path.join(ROOT, 'old.ts')))).toEqual(
      new Set(['ExpressSessionStore', 'expressId', 'ExpressSessionStoreOptions']),
    )
    expect(deprecated(path.join(ROOT, 'new.ts'))).toEqual([])
  })
})
