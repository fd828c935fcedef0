// Type-checks what a TypeScript user writes against the built package (dist/), with
// `tsc --strict` and no skipLibCheck:
//   - test/fixtures/types/*.ts (typed req.session / request.session / withSession, SessionShape,
//     Bag.get<T>, @ts-expect-error lines that must stay errors) under every module resolution a
//     user may have: node10 (typesVersions), node16 from CommonJS and from ESM, bundler; the
//     express-session store under both its entries, with @types/express-session;
//   - every ```ts block of README.md, each as its own ES module (bundler and node16 ESM).
// One tsc program per resolution: the machine may be shared, and each program loads every
// framework's types (skipLibCheck is off, so our .d.ts files are checked too).
// It runs in a scratch project whose node_modules links to this repo (as `sealed-session`) and to
// the repo's own dependencies. Exit code 0 when every program compiles; the errors otherwise.
// `--tsc FILE` compiles with another TypeScript's tsc (npm run check:types:ts7: TypeScript 7, which
// has no node10 resolution, so that program is left out).
//   node scripts/check-types.mjs [--only-readme] [--readme FILE] [--tsc FILE]
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
const readmePath = args.includes('--readme') ? path.resolve(args[args.indexOf('--readme') + 1]) : path.join(repo, 'README.md')
const onlyReadme = args.includes('--only-readme')

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
  if (name !== 'express-session') fs.symlinkSync(path.join(repo, 'node_modules', '@types', name), path.join(modules, '@types', name))
}
fs.symlinkSync(repo, path.join(modules, 'sealed-session'))

const base = { strict: true, noEmit: true, skipLibCheck: false, target: 'ES2022', lib: ['ES2022', 'DOM', 'ESNext.Disposable'], esModuleInterop: true, types: ['node'] }
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
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...base, ...modes[mode].options }, files: names }, null, 2))
  try {
    execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, stdio: 'pipe', encoding: 'utf8' })
    console.log(`ok   ${name}`)
  } catch (err) {
    failed++
    console.log(`FAIL ${name}\n${String(err.stdout || err.message).trim()}\n`)
  }
}

try {
  if (!onlyReadme) {
    const fixtures = path.join(repo, 'test', 'fixtures', 'types')
    const read = (f) => [f, fs.readFileSync(path.join(fixtures, f), 'utf8')]
    const main = ['shape.ts', 'express.ts', 'fastify.ts', 'fetch.ts'].map(read)
    // ESM-only syntax (export default of an app) is fine in CJS output too; top-level await is not used.
    for (const mode of Object.keys(modes)) program(`fixtures-${mode}`, mode, main)
    // @types/express-session in the program: linked in for this one only.
    fs.symlinkSync(path.join(repo, 'node_modules', '@types', 'express-session'), path.join(modules, '@types', 'express-session'))
    const withTypes = [read('with-express-session.ts'), read('express-session-store.ts')]
    for (const mode of ['node16-cjs', 'bundler']) program(`with-express-session-${mode}`, mode, withTypes)
  }
  const blocks = tsBlocks(fs.readFileSync(readmePath, 'utf8'))
  if (blocks.length === 0) {
    failed++
    console.log(`FAIL ${readmePath} holds no \`\`\`ts block`)
  }
  // Each block is a module of its own, as a user would paste it into a file; one program per
  // resolution holds them all (errors name the file, readme-<line>.ts, by the block's first line).
  const files = blocks.map(({ line, code }) => [`readme-${line}.ts`, /^(import|export) /m.test(code) ? code : `${code}\nexport {}\n`])
  if (files.length > 0) for (const mode of ['bundler', 'node16-esm']) program(`readme-${mode}`, mode, files)
} finally {
  fs.rmSync(work, { recursive: true, force: true })
}
console.log(failed === 0 ? 'check-types: ok' : `check-types: ${failed} program(s) failed`)
process.exit(failed === 0 ? 0 : 1)
