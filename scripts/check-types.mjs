// Type-checks what a TypeScript user writes against the built package (dist/), with
// `tsc --strict` and no skipLibCheck:
//   - test/fixtures/types/*.ts (typed req.session / request.session / withSession, SessionShape,
//     Bag.get<T>, @ts-expect-error lines that must stay errors) under every module resolution a
//     user may have: node10 (typesVersions), node16 from CommonJS and from ESM, bundler; the
//     express-session store under both its entries, with @types/express-session;
//   - every ```ts block of README.md and docs/**/*.md, each as its own ES module (bundler and
//     node16 ESM); a block's file is named after its page and first line (readme-40.ts,
//     docs-api-http-12.ts), so an error says where the block is.
// One tsc program per resolution: the machine may be shared, and each program loads every
// framework's types (skipLibCheck is off, so our .d.ts files are checked too).
// It runs in a scratch project whose node_modules links to this repo (as `sealed-session`) and to
// the repo's own dependencies. Exit code 0 when every program compiles; the errors otherwise.
//   node scripts/check-types.mjs [--only-markdown] [--md FILE]... [--readme FILE] [--tsc FILE]
// --md (repeatable) or --readme checks those Markdown files instead of README.md and docs/;
// --only-markdown (or --only-readme) leaves the fixtures out. `--tsc FILE` compiles with another
// TypeScript's tsc (npm run check:types:ts7: TypeScript 7, which has no node10 resolution, so that
// program is left out).
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const args = process.argv.slice(2)
const tsc = args.includes('--tsc')
  ? path.resolve(args[args.indexOf('--tsc') + 1])
  : require.resolve('typescript/bin/tsc')
const tscVersion = execFileSync(process.execPath, [tsc, '--version'], { encoding: 'utf8' }).trim()
const tscMajor = Number(/(\d+)\./.exec(tscVersion)?.[1])
const given = args.flatMap((a, i) => (a === '--md' || a === '--readme' ? [path.resolve(args[i + 1])] : []))
const onlyMarkdown = args.includes('--only-markdown') || args.includes('--only-readme')
const readmePath = path.join(repo, 'README.md')

/** README.md and every page under docs/, in a stable order. */
function markdownPages() {
  const pages = [readmePath]
  const walk = (dir) => {
    if (!fs.existsSync(dir)) return
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) walk(path.join(dir, e.name))
      else if (e.name.endsWith('.md')) pages.push(path.join(dir, e.name))
    }
  }
  walk(path.join(repo, 'docs'))
  return pages
}

/** The stem of a page's block files: its path in the repository (outside it, its name), in
 *  lowercase with '-' for separators: README.md → readme, docs/api/http.md → docs-api-http. */
function stemOf(page) {
  const rel = path.relative(repo, page)
  const name = rel.startsWith('..') || path.isAbsolute(rel) ? path.basename(page) : rel
  return name
    .replace(/\.md$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
}

if (!fs.existsSync(path.join(repo, 'dist', 'index.d.ts'))) {
  console.error('dist/ is missing: run `npm run build:ts` first')
  process.exit(2)
}
console.log(tscVersion)

/** The ```ts blocks of a Markdown file, with the line each starts on. */
export function tsBlocks(markdown) {
  const blocks = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i])) continue
    const start = i + 1
    let end = start
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++
    blocks.push({ line: start + 1, code: lines.slice(start, end).join('\n') })
    i = end
  }
  return blocks
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-types-'))
const modules = path.join(work, 'node_modules')
fs.mkdirSync(path.join(modules, '@types'), { recursive: true })
for (const name of fs.readdirSync(path.join(repo, 'node_modules'))) {
  if (name.startsWith('.') || name === '@types') continue
  fs.symlinkSync(path.join(repo, 'node_modules', name), path.join(modules, name))
}
for (const name of fs.readdirSync(path.join(repo, 'node_modules', '@types'))) {
  // @types/express-session only where a program imports it (its global augmentation is the point).
  if (name !== 'express-session')
    fs.symlinkSync(path.join(repo, 'node_modules', '@types', name), path.join(modules, '@types', name))
}
fs.symlinkSync(repo, path.join(modules, 'sealed-session'))

const base = {
  strict: true,
  noEmit: true,
  skipLibCheck: false,
  target: 'ES2022',
  lib: ['ES2022', 'DOM', 'ESNext.Disposable'],
  esModuleInterop: true,
  types: ['node'],
}
const modes = {
  ...(tscMajor >= 7 ? {} : { node10: { ext: '.ts', options: { module: 'commonjs', moduleResolution: 'node10' } } }),
  'node16-cjs': { ext: '.cts', options: { module: 'node16', moduleResolution: 'node16' } },
  'node16-esm': { ext: '.mts', options: { module: 'node16', moduleResolution: 'node16' } },
  bundler: { ext: '.ts', options: { module: 'esnext', moduleResolution: 'bundler' } },
}

let failed = 0
function program(name, mode, files) {
  const dir = path.join(work, name)
  fs.mkdirSync(dir)
  const names = []
  for (const [file, code] of files) {
    const target = file.replace(/\.ts$/, modes[mode].ext)
    fs.writeFileSync(path.join(dir, target), code)
    names.push(target)
  }
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { ...base, ...modes[mode].options }, files: names }, null, 2),
  )
  try {
    execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, stdio: 'pipe', encoding: 'utf8' })
    console.log(`ok   ${name}`)
  } catch (err) {
    failed++
    console.log(`FAIL ${name}\n${String(err.stdout || err.message).trim()}\n`)
  }
}

try {
  if (!onlyMarkdown) {
    const fixtures = path.join(repo, 'test', 'fixtures', 'types')
    const read = (f) => [f, fs.readFileSync(path.join(fixtures, f), 'utf8')]
    const main = ['shape.ts', 'express.ts', 'fastify.ts', 'fetch.ts'].map(read)
    // ESM-only syntax (export default of an app) is fine in CJS output too; top-level await is not used.
    for (const mode of Object.keys(modes)) program(`fixtures-${mode}`, mode, main)
    // @types/express-session in the program: linked in for this one only.
    fs.symlinkSync(
      path.join(repo, 'node_modules', '@types', 'express-session'),
      path.join(modules, '@types', 'express-session'),
    )
    const withTypes = [read('with-express-session.ts'), read('express-session-store.ts')]
    for (const mode of ['node16-cjs', 'bundler']) program(`with-express-session-${mode}`, mode, withTypes)
  }
  // Each block is a module of its own, as a user would paste it into a file; one program per
  // resolution holds them all (errors name the file, <page>-<line>.ts, by the block's first line).
  // The express-session blocks need its types, so they are in (as the fixtures' last programs left them).
  const expressSessionTypes = path.join(modules, '@types', 'express-session')
  if (!fs.existsSync(expressSessionTypes))
    fs.symlinkSync(path.join(repo, 'node_modules', '@types', 'express-session'), expressSessionTypes)
  const files = []
  for (const page of given.length > 0 ? given : markdownPages()) {
    const blocks = tsBlocks(fs.readFileSync(page, 'utf8'))
    if (blocks.length === 0 && (page === readmePath || given.includes(page))) {
      failed++
      console.log(`FAIL ${page} holds no \`\`\`ts block`)
    }
    for (const { line, code } of blocks)
      files.push([`${stemOf(page)}-${line}.ts`, /^(import|export) /m.test(code) ? code : `${code}\nexport {}\n`])
  }
  if (files.length > 0) for (const mode of ['bundler', 'node16-esm']) program(`markdown-${mode}`, mode, files)
} finally {
  fs.rmSync(work, { recursive: true, force: true })
}
console.log(failed === 0 ? 'check-types: ok' : `check-types: ${failed} program(s) failed`)
process.exit(failed === 0 ? 0 : 1)
