// Shared by the reliability tests (test/reliability/*.test.ts): temp roots, child processes
// running test/fixtures/reliability-*.mjs against the built package (dist/), and a seeded PRNG.
import { spawn, type SpawnOptions } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export const ROOT = path.join(__dirname, '..', '..')
export const FIXTURES = path.join(ROOT, 'test', 'fixtures')
export const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0
export const SECRET = 'a reliability-test secret, comfortably over 32 characters'
export const STORE_SECRET = 'another reliability secret for the file store, 32+ chars'

export { requireDist } from '../helpers/dist'

/** A fresh temp directory; remove it with rmTree (also handles 0000/foreign-owned leftovers as root). */
export function tmpRoot(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ss-rel-${prefix}-`))
}

export function rmTree(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true })
}

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs `node <fixture> ...args` (or `command` when given); SIGKILLs it after timeoutMs. */
export function runNode(
  fixture: string,
  args: string[],
  {
    timeoutMs = 20_000,
    nodeArgs = [] as string[],
    env,
  }: { timeoutMs?: number; nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return run(process.execPath, [...nodeArgs, path.join(FIXTURES, fixture), ...args], { cwd: ROOT, env }, timeoutMs)
}

export function run(cmd: string, args: string[], options: SpawnOptions, timeoutMs = 20_000): Promise<RunResult> {
  // Under an emulator (scripts/platform-tests.mjs: wine, qemu) children start slowly.
  timeoutMs *= Number(process.env.PLATFORM_TIMEOUT_SCALE ?? 1)
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
}

/** The last line of a child's stdout as JSON (fixtures print their result last). */
export function lastJson<T = Record<string, unknown>>(r: RunResult): T {
  const lines = r.stdout.trim().split('\n')
  try {
    return JSON.parse(lines[lines.length - 1]) as T
  } catch {
    throw new Error(
      `child printed no JSON result (code ${r.code}, signal ${r.signal})\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`,
    )
  }
}

/** mulberry32: a small seeded PRNG, so every random run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Every path under dir (relative, sorted), with a type letter: what a test compares before/after. */
export function snapshotTree(dir: string): string[] {
  const out: string[] = []
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`
      const kind = e.isSymbolicLink() ? 'l' : e.isDirectory() ? 'd' : e.isFIFO() ? 'p' : e.isFile() ? 'f' : '?'
      out.push(`${kind} ${p}`)
      if (kind === 'd') walk(p)
    }
  }
  walk('')
  return out.sort()
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
