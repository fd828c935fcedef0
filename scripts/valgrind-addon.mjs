#!/usr/bin/env node
// Runs test/fixtures/valgrind-exercise.cjs (every native function of the addon, success and
// error paths) under `valgrind --leak-check=full` and reports the definite leaks, and the memory
// errors, whose stack passes through our code: the addon (sealed_session.node, or a prebuild
// sealed-session*.node) or the sealed:: namespace. Node itself leaks a little at exit, and V8's
// JIT makes valgrind report some errors inside node; those are counted but do not fail the run.
// Usage: node scripts/valgrind-addon.mjs [--rounds N] [--keep-log]
// Needs valgrind (Debian: valgrind) and the local build (npm run build:native): the exercise
// loads build/Release/sealed_session.node, which keeps its symbols, so our frames have names.
// Exit: 0 clean, 1 leaks or errors from our code, 2 could not run.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const exercise = join(root, 'test', 'fixtures', 'valgrind-exercise.cjs')
const addon = join(root, 'build', 'Release', 'sealed_session.node')
const args = process.argv.slice(2)
const rounds = args.includes('--rounds') ? args[args.indexOf('--rounds') + 1] : '2'
const keepLog = args.includes('--keep-log')

if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('valgrind-addon: valgrind is not installed (Debian: apt-get install valgrind)')
  process.exit(2)
}
if (!existsSync(addon)) {
  console.error(`valgrind-addon: ${addon} is missing: run npm run build:native first`)
  process.exit(2)
}

const work = mkdtempSync(join(tmpdir(), 'ss-valgrind-log-'))
const log = join(work, 'valgrind.log')
const started = Date.now()
const r = spawnSync(
  'valgrind',
  [
    '--leak-check=full',
    '--show-leak-kinds=definite',
    '--errors-for-leak-kinds=definite',
    '--error-exitcode=1',
    '--num-callers=40',
    '--track-origins=no',
    `--log-file=${log}`,
    process.execPath,
    '--expose-gc',
    ...(process.env.VALGRIND_NODE_FLAGS ?? '').split(' ').filter(Boolean),
    exercise,
  ],
  {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, EXERCISE_ROUNDS: rounds, SEALED_ADDON: addon },
    maxBuffer: 64 * 1024 * 1024,
  },
)
const seconds = ((Date.now() - started) / 1000).toFixed(0)
process.stdout.write(r.stdout ?? '')
if (r.error || !existsSync(log)) {
  console.error(`valgrind-addon: could not run valgrind: ${r.error?.message ?? r.stderr}`)
  process.exit(2)
}
const exerciseOk = /valgrind-exercise: \d+ native calls, \d+ expected errors, 0 unexpected/.test(r.stdout ?? '')

// valgrind's log: each record is a run of "==pid== " lines ended by an empty "==pid== " line.
const text = readFileSync(log, 'utf8')
const records = []
let current = []
for (const raw of text.split('\n')) {
  const line = raw.replace(/^==\d+== ?/, '')
  if (line.trim() === '') {
    if (current.length > 0) records.push(current)
    current = []
  } else current.push(line)
}
if (current.length > 0) records.push(current)

const OURS = /sealed_session\.node|sealed-session[^/\s]*\.node|sealed::|native\/(core\/[a-z_]+|addon)\.cc/
const isStack = (rec) => rec.some((l) => /^\s+(at|by) 0x/.test(l))
const definite = records.filter((rec) => /definitely lost in loss record/.test(rec[0]) && isStack(rec))
const errors = records.filter(
  (rec) => isStack(rec) && !/lost in loss record/.test(rec[0]) && !/^(HEAP|LEAK|ERROR) SUMMARY/.test(rec[0]),
)
// OpenSSL keeps per-thread state (the thread's DRBG, its error queue) in thread-locals that it
// frees only when the thread exits; libuv's pool threads live until the process ends, so the
// first RAND_bytes on each pool thread shows up as "definitely lost" under whichever caller came
// first: ours. Bounded (one per thread, not per call), not a leak; reported separately.
const PER_THREAD = /rand_new_drbg|RAND_get0_(public|private)|ossl_err_get_state|ERR_get_state|ossl_init_thread/
// The proof that it is per thread: at most one DRBG context (one direct block) per pool thread,
// however many rounds run; more than that is counted as a leak of ours.
const POOL = Number(process.env.UV_THREADPOOL_SIZE || 4)
const blocks = (rec) => Number((rec[0].match(/ in ([\d,]+) blocks? are/)?.[1] ?? '0').replace(/,/g, ''))
let perThread = definite.filter((rec) => rec.some((l) => OURS.test(l)) && rec.some((l) => PER_THREAD.test(l)))
const perThreadBlocks = perThread.reduce((n, rec) => n + blocks(rec), 0)
if (perThreadBlocks > POOL) perThread = []
const ourLeaks = definite.filter((rec) => rec.some((l) => OURS.test(l)) && !perThread.includes(rec))
const ourErrors = errors.filter((rec) => rec.some((l) => OURS.test(l)))
const nodeLeaks = definite.filter((rec) => !rec.some((l) => OURS.test(l))).length
const bytes = (rec) => Number((rec[0].match(/^([\d,]+) /)?.[1] ?? '0').replace(/,/g, ''))
const summary = text.match(/definitely lost: [^\n]*/)?.[0] ?? 'definitely lost: (no summary)'

for (const rec of [...ourLeaks, ...ourErrors]) console.log(`\n${rec.join('\n')}`)
console.log(
  `valgrind: ${ourLeaks.length} definite leaks from our code (${ourLeaks.reduce((n, rec) => n + bytes(rec), 0)} bytes), ` +
    `${ourErrors.length} memory errors in our code; ${perThreadBlocks} blocks of per-thread OpenSSL state on ${POOL} pool threads (not leaks); node itself: ${nodeLeaks} definite leaks, ` +
    `${errors.length - ourErrors.length} errors outside our code (whole process ${summary}) — ${seconds} s`,
)
if (keepLog) console.log(`valgrind log kept at ${log}`)
else rmSync(work, { recursive: true, force: true })

if (!exerciseOk) {
  console.error(
    `valgrind-addon: the exercise did not finish cleanly (exit ${r.status}, signal ${r.signal})\n${r.stderr ?? ''}`,
  )
  process.exit(2)
}
process.exit(ourLeaks.length > 0 || ourErrors.length > 0 ? 1 : 0)
