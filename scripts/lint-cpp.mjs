// Checks the C++ under native/ against .clang-format; exits 1 with the files that differ.
//   node scripts/lint-cpp.mjs          check (clang-format --dry-run --Werror)
//   node scripts/lint-cpp.mjs --fix    rewrite the files in place (clang-format -i)
// CI uses Debian's clang-format 14: other majors may break lines differently, so a mismatch is
// reported next to any failure.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const EXPECTED_MAJOR = 14
const fix = process.argv.includes('--fix')
const clangFormat = process.env.CLANG_FORMAT || 'clang-format'

function sources(dir) {
  const out = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...sources(full))
    else if (/\.(cc|h)$/.test(entry.name)) out.push(full)
  }
  return out.sort()
}

function run(args) {
  return spawnSync(clangFormat, args, { cwd: repo, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
}

const version = run(['--version'])
if (version.error) {
  console.error(`${clangFormat} not found (${version.error.code}): apt-get install clang-format, or set CLANG_FORMAT`)
  process.exit(2)
}
const versionText = version.stdout.trim()
const major = Number(/version (\d+)/.exec(versionText)?.[1])

const files = sources(path.join(repo, 'native')).map((f) => path.relative(repo, f))
if (fix) {
  const r = run(['-i', '--style=file', ...files])
  if (r.status !== 0) {
    process.stderr.write(r.stderr)
    process.exit(1)
  }
  console.log(`clang-format: formatted ${files.length} files`)
  process.exit(0)
}

const bad = []
for (const file of files) {
  const r = run(['--dry-run', '--Werror', '--style=file', file])
  if (r.status === 0) continue
  const violations = (r.stderr.match(/: error: code should be clang-formatted/g) ?? []).length
  bad.push({ file, violations, first: r.stderr.split('\n').slice(0, 3).join('\n') })
}
if (bad.length === 0) {
  console.log(`clang-format: ${files.length} files match .clang-format`)
  process.exit(0)
}
for (const b of bad) console.error(b.first)
console.error(`\nclang-format: ${bad.length} of ${files.length} files differ from .clang-format:`)
for (const { file, violations } of bad) {
  const where = violations === 1 ? '1 place' : `${violations || 'some'} places`
  console.error(`  ${file} (${where})`)
}
console.error('Run `npm run format` (or `node scripts/lint-cpp.mjs --fix`) to rewrite them.')
if (major !== EXPECTED_MAJOR) {
  console.error(`Note: this is ${versionText}; the style is checked with clang-format ${EXPECTED_MAJOR} in CI.`)
}
process.exit(1)
