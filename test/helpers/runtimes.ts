// Bun and Deno (from their npm packages, else PATH) and Node, for tests that run the package
// from dist/ under each runtime in a child process. The child is killed if it hangs.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import { ROOT, type Ran } from './run-node'

export type RuntimeName = 'node' | 'bun' | 'deno'

function onPath(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : null
}

function find(pkgBinary: string, cmd: string): string | null {
  const local = path.join(ROOT, 'node_modules', pkgBinary)
  return fs.existsSync(local) ? local : onPath(cmd)
}

const BUN = find('@oven/bun-linux-x64/bin/bun', 'bun')
const DENO = find('@deno/linux-x64-glibc/deno', 'deno')

/** The command line that runs a script under the runtime, or null when it is not installed. */
export function runtimeCommand(rt: RuntimeName): string[] | null {
  if (rt === 'node') return [process.execPath]
  if (rt === 'bun') return BUN ? [BUN] : null
  return DENO ? [DENO, 'run', '-A', '--quiet'] : null
}

export const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'runtime-ops.mjs')

export function spawnIn(rt: RuntimeName, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const cmd = runtimeCommand(rt)
  if (cmd === null) throw new Error(`${rt} is not installed`)
  return spawn(cmd[0], [...cmd.slice(1), ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] })
}

export function collect(p: ChildProcessWithoutNullStreams, timeoutMs = 60_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const guard = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.on('error', reject)
    p.on('close', (code) => {
      clearTimeout(guard)
      resolve({ code, stdout, stderr })
    })
  })
}

/** Runs one fixture operation under the runtime; its JSON result (the last line), or throws
 *  with what the child printed when it did not exit 0. */
export async function op<T = Record<string, unknown>>(
  rt: RuntimeName,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<T> {
  const p = spawnIn(rt, [FIXTURE, ...args], env)
  p.stdin.end()
  const ran = await collect(p)
  if (ran.code !== 0) throw new Error(`${rt} ${args.join(' ')} exited ${ran.code}:\n${ran.stdout}\n${ran.stderr}`)
  return JSON.parse(ran.stdout.trim().split('\n').pop()!) as T
}

/** The environment without SEALED_SESSION_CRYPTO, so each runtime picks its own backend. */
export function autoEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra }
  if (!('SEALED_SESSION_CRYPTO' in extra)) delete env.SEALED_SESSION_CRYPTO
  return env
}
