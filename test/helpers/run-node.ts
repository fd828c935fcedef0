// Runs a Node script in a child process and collects what it printed, for tests that need a
// fresh process (GC, key rings, the CLI, the keychain). The child is killed if it hangs.
import { spawn } from 'node:child_process'
import * as path from 'node:path'

export const ROOT = path.join(__dirname, '..', '..')

export interface Ran {
  code: number | null
  stdout: string
  stderr: string
}

export function runNode(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {
      cwd: ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const guard = setTimeout(() => p.kill('SIGKILL'), options.timeoutMs ?? 30_000)
    p.on('error', reject)
    p.on('close', (code) => {
      clearTimeout(guard)
      resolve({ code, stdout, stderr })
    })
  })
}

/** The last line a child printed, parsed as JSON (fixtures report their findings that way). */
export function lastJsonLine<T>(ran: Ran): T {
  return JSON.parse(ran.stdout.trim().split('\n').pop()!) as T
}
