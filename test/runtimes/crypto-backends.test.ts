// The crypto backends (docs/platforms.md#crypto-backends): each one reproduces the shared
// known-answer vectors, under Node (both backends), Bun and Deno; SEALED_SESSION_CRYPTO forces
// one and never falls back to another; with no backend every runtime gets a catchable
// SessionCryptoUnavailableError (never a process abort) and the memory store keeps working.
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'

import { cryptoBackend } from '../../lib/index'
import { needs } from '../helpers/ci'
import { requireDist } from '../helpers/dist'
import { ROOT } from '../helpers/run-node'
import { autoEnv, collect, FIXTURE, op, runtimeCommand, type RuntimeName } from '../helpers/runtimes'

requireDist()
// Each test starts runtime processes (1-3 s each on a loaded machine).
vi.setConfig({ testTimeout: 120_000 })
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-crypto-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

// The project's copy and the shared one beside the repository (the same vectors when both exist).
const VECTOR_FILES = [
  path.join(ROOT, 'test', 'vectors', 'envelope-v1.json'),
  path.join(ROOT, '..', 'shared', 'vectors', 'envelope-v1.json'),
].filter((f) => fs.existsSync(f))

const has = (rt: RuntimeName) => needs(runtimeCommand(rt) !== null, `the ${rt} runtime`)

interface VectorResult {
  backend: string
  keyIds: boolean[]
  envelopes: boolean[]
  tampered: string | null
}

// Each runtime with the backend it picks by itself, plus Node forced onto each backend.
const CASES: Array<{ rt: RuntimeName; forced?: string; backend: string }> = [
  { rt: 'node', backend: 'node-openssl' },
  { rt: 'node', forced: 'node-openssl', backend: 'node-openssl' },
  { rt: 'node', forced: 'system-openssl', backend: 'system-openssl' },
  { rt: 'bun', backend: 'system-openssl' },
  { rt: 'deno', backend: 'system-openssl' },
]

describe('every backend reproduces the shared vectors byte for byte', () => {
  for (const c of CASES) {
    it.skipIf(!has(c.rt))(
      `${c.rt}${c.forced ? ` with SEALED_SESSION_CRYPTO=${c.forced}` : ''}: ${c.backend}`,
      async () => {
        for (const file of VECTOR_FILES) {
          const env = autoEnv(c.forced ? { SEALED_SESSION_CRYPTO: c.forced } : {})
          const r = await op<VectorResult>(c.rt, ['vectors', file], env)
          expect(r.backend).toBe(c.backend)
          expect(r.keyIds.length).toBeGreaterThan(0)
          expect(r.keyIds.every(Boolean)).toBe(true)
          expect(r.envelopes.length).toBeGreaterThan(0)
          expect(r.envelopes.every(Boolean)).toBe(true)
          expect(r.tampered).toBe('ERR_SESSION_TAMPERED')
        }
      },
    )
  }
})

interface NoCrypto {
  backend: string
  memory: string | null
  login: 'resolved' | { typed: boolean; code: string; message: string }
  getSessionSync: 'returned' | { typed: boolean; code: string; message: string }
  fileStore: 'constructed' | { typed: boolean; code: string; message: string }
}

function expectUnavailable(r: NoCrypto, message: string | RegExp): void {
  expect(r.backend).toBe('none')
  // Importing and the memory store work without crypto.
  expect(r.memory).toBe('v')
  for (const outcome of [r.login, r.getSessionSync, r.fileStore]) {
    expect(outcome).toMatchObject({ typed: true, code: 'ERR_SESSION_CRYPTO_UNAVAILABLE' })
    expect((outcome as { message: string }).message).toMatch(message)
  }
}

describe('SEALED_SESSION_CRYPTO', () => {
  it('the process reports the backend it uses', () => {
    expect(cryptoBackend()).toBe(process.env.SEALED_SESSION_CRYPTO || 'node-openssl')
  })

  it('an unknown name fails the first call that needs crypto (async rejects, sync throws), never another backend', async () => {
    const r = await op<NoCrypto>(
      'node',
      ['no-crypto', path.join(tmp, 'unknown')],
      autoEnv({ SEALED_SESSION_CRYPTO: 'aes-js' }),
    )
    expectUnavailable(r, /SEALED_SESSION_CRYPTO='aes-js' is not a crypto backend \(node-openssl, system-openssl, cng\)/)
  })

  it.skipIf(process.platform === 'win32')('cng (Windows only) is an error elsewhere, not another backend', async () => {
    const r = await op<NoCrypto>(
      'node',
      ['no-crypto', path.join(tmp, 'cng')],
      autoEnv({ SEALED_SESSION_CRYPTO: 'cng' }),
    )
    expectUnavailable(r, /SEALED_SESSION_CRYPTO=cng, but CNG is only on Windows/)
  })
})

// The system's libcrypto, hidden in a private mount namespace by an empty file bound over it.
const LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib']
const libs = [
  ...new Set(
    LIB_DIRS.flatMap((d) => ['libcrypto.so.3', 'libcrypto.so.1.1'].map((f) => path.join(d, f)))
      .filter((f) => fs.existsSync(f))
      .map((f) => fs.realpathSync(f)),
  ),
]
const canHide =
  process.platform === 'linux' &&
  process.getuid?.() === 0 &&
  spawnSync('unshare', ['-m', 'true']).status === 0 &&
  libs.length > 0

async function withoutLibcrypto(rt: RuntimeName, args: string[], env: NodeJS.ProcessEnv): Promise<NoCrypto> {
  const empty = path.join(tmp, 'empty')
  fs.writeFileSync(empty, '')
  const mounts = libs.map((l) => `mount --bind '${empty}' '${l}'`).join(' && ')
  const cmd = [...runtimeCommand(rt)!, FIXTURE, ...args].map((a) => `'${a}'`).join(' ')
  const p = spawn('unshare', ['-m', 'sh', '-c', `${mounts} && exec ${cmd}`], { cwd: ROOT, env })
  p.stdin.end()
  const ran = await collect(p)
  // Exit 0: the process went on after the error, it did not die in the dynamic linker.
  expect(ran.stderr).not.toMatch(/symbol lookup error/)
  expect(ran.code, ran.stderr).toBe(0)
  return JSON.parse(ran.stdout.trim().split('\n').pop()!) as NoCrypto
}

describe('no crypto backend: a typed error, never an abort', () => {
  const hide = needs(canHide, 'root, unshare -m and a system libcrypto to hide')
  for (const rt of ['bun', 'deno'] as const) {
    it.skipIf(!hide || !has(rt))(`${rt} with the system libcrypto hidden`, async () => {
      const r = await withoutLibcrypto(rt, ['no-crypto', path.join(tmp, `hidden-${rt}`)], autoEnv())
      expectUnavailable(r, /libcrypto\.so\.3 not found or not loadable: install libssl3/)
    })
  }

  it.skipIf(!hide)('node forced onto the hidden system libcrypto', async () => {
    const env = autoEnv({ SEALED_SESSION_CRYPTO: 'system-openssl' })
    const r = await withoutLibcrypto('node', ['no-crypto', path.join(tmp, 'hidden-node')], env)
    expectUnavailable(r, /SEALED_SESSION_CRYPTO=system-openssl, but libcrypto\.so\.3 not found or not loadable/)
  })

  it.skipIf(!hide)("node keeps working on its own OpenSSL with the system's hidden", async () => {
    const r = await withoutLibcrypto('node', ['no-crypto', path.join(tmp, 'hidden-node-own')], autoEnv())
    expect(r).toMatchObject({ backend: 'node-openssl', memory: 'v', login: 'resolved', fileStore: 'constructed' })
  })
})

describe('the built addon', () => {
  const nm = needs(spawnSync('nm', ['--version']).status === 0, 'nm (binutils)')
  it.skipIf(!nm || process.platform !== 'linux')('links no OpenSSL symbol: it loads in hosts that export none', () => {
    const addon = require('node-gyp-build').resolve(ROOT) as string
    const r = spawnSync('nm', ['-D', '--undefined-only', addon], { encoding: 'utf8' })
    expect(r.status).toBe(0)
    const undefinedSymbols = r.stdout.split('\n').map((l) => l.trim().split(/\s+/).pop() ?? '')
    expect(undefinedSymbols.filter((s) => /^(EVP_|RAND_|HMAC|OPENSSL_|OpenSSL_|CRYPTO_|ERR_)/.test(s))).toEqual([])
    // It opens the system's libcrypto itself, at run time.
    expect(undefinedSymbols.some((s) => /^dlopen(@|$)/.test(s))).toBe(true)
  })
})
