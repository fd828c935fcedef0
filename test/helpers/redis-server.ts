// A throwaway redis-server for tests: loopback only, a free port, no persistence, a temp dir.
// `stop()` and `restart()` (same port) let a test take Redis away and bring it back;
// `pause()`/`resume()` (SIGSTOP/SIGCONT) make it hang without closing connections.
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

export interface RedisServer {
  port: number
  /** The server's process id while it runs. */
  readonly pid: number | undefined
  url: string
  /** Stops the server (SIGTERM, SIGKILL after 2 s), waits for it to exit, removes its temp dir. */
  stop(): Promise<void>
  /** Starts it again on the same port (stopping it first if it runs). Data is gone: no persistence. */
  restart(): Promise<void>
  /** SIGKILL, even while paused: connections drop without a reply to anything pending. */
  kill(): Promise<void>
  /** SIGSTOP: connections stay open, nothing is answered. */
  pause(): void
  resume(): void
}

/** The redis-server binary, or null when it is not installed. */
export function findRedisServer(): string | null {
  return findBinary('redis-server')
}

/** An executable on PATH (redis-server, redis-cli, redis-sentinel), or null. */
export function findBinary(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue
    const bin = path.join(dir, name)
    try {
      fs.accessSync(bin, fs.constants.X_OK)
      return bin
    } catch {
      /* not here */
    }
  }
  return null
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/** True once the server answers PING with +PONG. */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' })
    let buf = ''
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(500, () => done(false))
    sock.once('error', () => done(false))
    sock.on('data', (d) => {
      buf += d.toString('latin1')
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'))
    })
    sock.once('connect', () => sock.write('PING\r\n'))
  })
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** `extraArgs` go after the defaults (e.g. `--cluster-enabled yes`, `--replicaof 127.0.0.1 6379`). */
export async function startRedisServer(extraArgs: string[] = []): Promise<RedisServer> {
  const bin = findRedisServer()
  if (bin === null) throw new Error('redis-server is not installed (Debian: apt-get install redis-server)')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-redis-'))
  let child: ChildProcess | null = null
  let output = ''

  const launch = async (port: number): Promise<boolean> => {
    output = ''
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 }) // stop() removed it
    const proc = spawn(
      bin,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--dir',
        dir,
        ...extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    proc.stdout!.on('data', (d: Buffer) => (output += d.toString()))
    proc.stderr!.on('data', (d: Buffer) => (output += d.toString()))
    let exited = false
    proc.once('exit', () => (exited = true))
    child = proc
    const deadline = Date.now() + 5_000
    while (Date.now() < deadline) {
      if (exited) return false
      if (await ping(port)) return true
      await sleep(20)
    }
    proc.kill('SIGKILL')
    return false
  }

  const stop = async (hard = false): Promise<void> => {
    const proc = child
    child = null
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    if (hard) proc.kill('SIGKILL')
    proc.kill('SIGCONT') // a paused server cannot act on SIGTERM
    proc.kill('SIGTERM')
    const force = setTimeout(() => proc.kill('SIGKILL'), 2_000)
    await exited
    clearTimeout(force)
  }

  // A port free a moment ago may be taken by the time redis binds it: try a few.
  let port = 0
  for (let attempt = 0; ; attempt++) {
    port = await freePort()
    if (await launch(port)) break
    if (attempt === 4) throw new Error(`redis-server did not start:\n${output}`)
  }

  const server: RedisServer = {
    port,
    get pid() {
      return child?.pid
    },
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await stop()
    },
    restart: async () => {
      await stop()
      if (!(await launch(port))) throw new Error(`redis-server did not restart on port ${port}:\n${output}`)
    },
    kill: () => stop(true),
    pause: () => {
      child?.kill('SIGSTOP')
    },
    resume: () => {
      child?.kill('SIGCONT')
    },
  }
  const stopAndClean = server.stop
  server.stop = async () => {
    await stopAndClean()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return server
}
