#!/usr/bin/env node
// Builds and runs the native core's own tests (native/test, no Node-API) in one or more
// variants, each in build-core/<variant>:
//   plain     default toolchain, ctest
//   asan      AddressSanitizer + UndefinedBehaviorSanitizer (gcc is fine), ctest
//   fuzz      clang + libFuzzer: ctest (tests and seed replay under ASan/UBSan), then the
//             envelope fuzzer for FUZZ_SECONDS (default 60) on a seed corpus of valid envelopes
//   valgrind  the plain binaries under valgrind --leak-check=full --error-exitcode=1
// Usage: node scripts/core-tests.mjs [plain] [asan] [fuzz] [valgrind] | all
// Needs cmake, a C++17 compiler, OpenSSL 3 headers (Debian: cmake g++ libssl-dev), and for
// the fuzz variant clang (Debian: clang), for valgrind valgrind. Exit code 0 only if all pass.
import { spawn, spawnSync } from 'node:child_process'
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const srcDir = join(root, 'native', 'test')
const buildRoot = join(root, 'build-core')
const vectors = join(root, 'test', 'vectors', 'envelope-v1.json')
const jobs = String(Math.max(1, availableParallelism()))
const VARIANTS = ['plain', 'asan', 'fuzz', 'valgrind']

let variants = process.argv.slice(2)
if (variants.length === 0) variants = ['plain']
if (variants.includes('all')) variants = VARIANTS
for (const v of variants) {
  if (!VARIANTS.includes(v)) {
    console.error(`core-tests: unknown variant '${v}' (expected ${VARIANTS.join(', ')} or all)`)
    process.exit(2)
  }
}

class StepError extends Error {}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : null
}

// Runs a command; output goes to the console unless quiet (then it is returned and shown only
// on failure). Throws StepError on a non-zero exit.
function run(cmd, args, { cwd = root, quiet = false, env } = {}) {
  console.log(`$ ${[cmd, ...args].join(' ')}`)
  const r = spawnSync(cmd, args, {
    cwd,
    env: env ? { ...process.env, ...env } : process.env,
    encoding: 'utf8',
    stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    maxBuffer: 256 * 1024 * 1024,
  })
  const out = quiet ? `${r.stdout ?? ''}${r.stderr ?? ''}` : ''
  if (r.error) throw new StepError(`${cmd}: ${r.error.message}`)
  if (r.status !== 0) {
    if (quiet) process.stdout.write(out)
    throw new StepError(`${cmd} exited with ${r.status ?? r.signal}`)
  }
  return out
}

function configureAndBuild(variant, cmakeArgs) {
  const dir = join(buildRoot, variant)
  run(
    'cmake',
    ['-S', srcDir, '-B', dir, '-DCMAKE_BUILD_TYPE=RelWithDebInfo', `-DSEALED_VECTORS=${vectors}`, ...cmakeArgs],
    {
      quiet: true,
    },
  )
  run('cmake', ['--build', dir, '--parallel', jobs], { quiet: true })
  return dir
}

// Runs ctest verbosely but prints only the harness summary lines (all output on failure).
function ctest(dir) {
  console.log(`$ ctest --output-on-failure -V  (in ${dir})`)
  const r = spawnSync('ctest', ['--output-on-failure', '-V'], {
    cwd: dir,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  })
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`
  const summaries = []
  for (const raw of out.split('\n')) {
    const line = raw.replace(/^\d+: /, '')
    if (
      /^\d+ passed, \d+ failed$|^\d+ test cases$|bit flips:|skipped:|^replay:|^make_corpus:|tests passed|^FAIL/.test(
        line.trim(),
      )
    ) {
      console.log(`  ${line.trim()}`)
      summaries.push(line.trim())
    }
  }
  if (r.status !== 0) {
    process.stdout.write(out)
    throw new StepError(`ctest exited with ${r.status ?? r.signal}`)
  }
  const harness = summaries.find((l) => /^\d+ passed, 0 failed$/.test(l))
  if (!harness) throw new StepError('no "N passed, 0 failed" line from core_test')
  return harness
}

function findClang() {
  for (const c of [process.env.CLANGXX, 'clang++', 'clang++-14', 'clang++-15', 'clang++-16']) {
    if (c && which(c)) return which(c)
  }
  return null
}

// Runs the fuzzer with a wall-clock guard; resolves with { code, log }.
function runFuzzer(bin, args, logPath, seconds) {
  console.log(`$ ${[bin, ...args].join(' ')}  (log: ${logPath})`)
  return new Promise((resolveRun) => {
    const log = createWriteStream(logPath)
    const child = spawn(bin, args, { cwd: dirname(bin), stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.pipe(log, { end: false })
    child.stderr.pipe(log, { end: false })
    const guard = setTimeout(() => child.kill('SIGKILL'), (seconds + 120) * 1000)
    child.on('close', (code, signal) => {
      clearTimeout(guard)
      log.end(() => resolveRun({ code: code ?? 128, signal, log: readFileSync(logPath, 'utf8') }))
    })
  })
}

const steps = {
  plain() {
    const dir = configureAndBuild('plain', [])
    return ctest(dir)
  },

  asan() {
    const dir = configureAndBuild('asan', ['-DSANITIZE=address,undefined'])
    return ctest(dir)
  },

  async fuzz() {
    const clang = findClang()
    if (!clang) throw new StepError('fuzz needs clang++ with libFuzzer: apt-get install -y clang')
    const dir = configureAndBuild('fuzz', ['-DFUZZ=ON', `-DCMAKE_CXX_COMPILER=${clang}`])
    const harness = ctest(dir) // also writes the seed corpus (fuzz_corpus test)
    const seconds = Number(process.env.FUZZ_SECONDS ?? 60)
    if (!(seconds > 0)) throw new StepError(`bad FUZZ_SECONDS '${process.env.FUZZ_SECONDS}'`)
    const seeds = join(dir, 'corpus')
    const work = join(dir, 'corpus-work')
    const crashes = join(dir, 'crashes')
    rmSync(work, { recursive: true, force: true })
    mkdirSync(work, { recursive: true })
    mkdirSync(crashes, { recursive: true })
    const nSeeds = readdirSync(seeds).length
    const { code, signal, log } = await runFuzzer(
      join(dir, 'fuzz_envelope'),
      [
        `-max_total_time=${seconds}`,
        '-print_final_stats=1',
        '-timeout=10',
        `-artifact_prefix=${crashes}/`,
        work,
        seeds,
      ],
      join(dir, 'fuzz.log'),
      seconds,
    )
    const stat = log.match(/stat::number_of_executed_units:\s*(\d+)/)
    const pulses = [...log.matchAll(/^#(\d+)\s/gm)]
    const execs = stat ? Number(stat[1]) : pulses.length ? Number(pulses.at(-1)[1]) : 0
    const crashed = code !== 0 || /==\d+==ERROR|deadly signal|runtime error:/.test(log)
    const line = `fuzz: ${execs} executions, ${crashed ? 1 : 0} crashes`
    console.log(`  ${nSeeds} seeds, ${seconds} s`)
    console.log(`  ${line}`)
    if (crashed) {
      console.log(log.split('\n').slice(-80).join('\n'))
      throw new StepError(`fuzzer found a crash (exit ${code ?? signal}); reproducer in ${crashes}/`)
    }
    if (execs === 0) throw new StepError('fuzzer ran no executions')
    return `${harness}; ${line}`
  },

  valgrind() {
    if (!which('valgrind')) throw new StepError('valgrind variant needs valgrind: apt-get install -y valgrind')
    const dir = configureAndBuild('plain', [])
    const vg = ['--leak-check=full', '--error-exitcode=1', '--quiet']
    const out = run('valgrind', [...vg, join(dir, 'core_test'), vectors], { quiet: true })
    const harness = out.split('\n').find((l) => /^\d+ passed, \d+ failed$/.test(l))
    if (harness) console.log(`  ${harness}`)
    if (!harness || !/ 0 failed$/.test(harness)) throw new StepError('core_test under valgrind did not pass')
    run(join(dir, 'make_corpus'), [vectors, join(dir, 'corpus')], { quiet: true })
    const replay = run('valgrind', [...vg, join(dir, 'fuzz_envelope'), join(dir, 'corpus')], { quiet: true })
    const replayLine = replay.split('\n').find((l) => l.startsWith('replay:'))
    console.log(`  ${replayLine}`)
    console.log('  valgrind: 0 errors, no leaks')
    return `${harness}; ${replayLine}; valgrind clean`
  },
}

if (!existsSync(vectors)) {
  console.error(`core-tests: missing ${vectors}`)
  process.exit(1)
}

const results = []
for (const v of variants) {
  console.log(`\n=== core tests: ${v} ===`)
  const t0 = performance.now()
  let ok = true
  let summary
  try {
    summary = await steps[v]()
  } catch (e) {
    ok = false
    summary = e instanceof StepError ? e.message : (e?.stack ?? String(e))
    console.log(`  FAILED: ${summary}`)
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1)
  results.push({ v, ok, secs, summary })
  console.log(`=== ${v}: ${ok ? 'ok' : 'FAILED'} in ${secs} s ===`)
}

console.log('\ncore tests summary:')
for (const r of results)
  console.log(`  ${r.v.padEnd(8)} ${r.ok ? 'ok    ' : 'FAILED'} ${r.secs.padStart(6)} s  ${r.summary}`)
process.exit(results.every((r) => r.ok) ? 0 : 1)
