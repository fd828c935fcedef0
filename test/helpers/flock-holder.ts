// A live "writer" for stale-temp tests: util-linux flock(1) (--no-fork: one process, so
// killing its pid drops the lock) holds flock(2) on a file (the lock
// our atomic writes hold on their temp file) until released. Stopped by its pid.
import { spawn, spawnSync } from 'node:child_process'

export const HAS_FLOCK = spawnSync('flock', ['--version']).status === 0

/** Fails under CI=true where flock(1) is missing (CI installs util-linux); else reports it. */
export function requireFlock(): boolean {
  if (!HAS_FLOCK && process.env.CI === 'true') throw new Error('flock(1) (util-linux) is missing: .ci/run installs it')
  return HAS_FLOCK
}

export interface HeldLock {
  pid: number
  release(): Promise<void>
}

/** Creates `file` if needed and holds an exclusive flock on it; resolves once it is held. */
export function holdFlock(file: string): Promise<HeldLock> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['--exclusive', '--nonblock', '--no-fork', file, '-c', 'echo held; exec sleep 60'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    child.on('error', reject)
    const exited = new Promise<void>((r) => child.on('exit', () => r()))
    child.on('exit', (code) => reject(new Error(`flock exited (${code}) before holding the lock: ${err}`)))
    // (reject after resolve is a no-op: a released holder's exit changes nothing)
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (!d.includes('held')) return
      resolve({
        pid: child.pid!,
        async release() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
          await exited
        },
      })
    })
  })
}
