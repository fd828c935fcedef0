// A throwaway PostgreSQL server for tests (Debian's postgresql package): `initdb` and `postgres`
// run as the `postgres` user (runuser) in a temp directory, listening on 127.0.0.1 on a free
// port and on a private socket directory, fsync off. `stop()` (SIGINT: fast shutdown, by pid)
// and `restart()` (same port, same data) let a test take the server away and bring it back.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { freePort } from './redis-server'

/** The server binaries: $PG_BIN, else Debian's newest /usr/lib/postgresql/<major>/bin (15 on bookworm). */
export const PG_BIN = process.env.PG_BIN ?? debianBin()

function debianBin(): string {
  let majors: number[] = []
  try {
    majors = fs.readdirSync('/usr/lib/postgresql').map(Number).filter(Number.isInteger)
  } catch {
    /* not installed */
  }
  return `/usr/lib/postgresql/${majors.length > 0 ? Math.max(...majors) : 15}/bin`
}
const RUNUSER = '/usr/sbin/runuser'

export interface PostgresServer {
  port: number
  readonly pid: number | undefined
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust authentication on loopback). */
  url: string
  /** Stops the server (SIGINT, SIGKILL after 5 s), waits for it to exit; the data stays for restart(). */
  halt(): Promise<void>
  /** Starts it again on the same port and data directory. */
  restart(): Promise<void>
  /** Stops it and removes its directory. */
  stop(): Promise<void>
  /** Runs a tool of PG_BIN (pg_dump, psql) as postgres against this server; its stdout. */
  tool(name: string, args: string[]): string
}

/** True when the binaries are installed and we can run them as the postgres user. */
export function findPostgres(): boolean {
  try {
    fs.accessSync(path.join(PG_BIN, 'postgres'), fs.constants.X_OK)
    fs.accessSync(path.join(PG_BIN, 'initdb'), fs.constants.X_OK)
    fs.accessSync(RUNUSER, fs.constants.X_OK)
  } catch {
    return false
  }
  return process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status === 0
}

/** True once the server accepts a TCP connection. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' })
    sock.once('connect', () => {
      sock.destroy()
      resolve(true)
    })
    sock.once('error', () => resolve(false))
  })
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export async function startPostgresServer(): Promise<PostgresServer> {
  if (!findPostgres()) throw new Error(`PostgreSQL is not installed in ${PG_BIN} (Debian: apt-get install postgresql)`)
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-pg-'))
  const data = path.join(root, 'data')
  const sockets = path.join(root, 'sock')
  fs.mkdirSync(sockets, { mode: 0o700 })
  fs.chmodSync(root, 0o700)
  spawnSync('chown', ['-R', 'postgres:postgres', root])
  const init = spawnSync(
    RUNUSER,
    ['-u', 'postgres', '--', path.join(PG_BIN, 'initdb'), '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'],
    { encoding: 'utf8' },
  )
  if (init.status !== 0) throw new Error(`initdb failed:\n${init.stdout}\n${init.stderr}`)

  let child: ChildProcess | null = null
  let output = ''
  const launch = async (port: number): Promise<boolean> => {
    output = ''
    const proc = spawn(
      RUNUSER,
      [
        '-u',
        'postgres',
        '--',
        path.join(PG_BIN, 'postgres'),
        '-D',
        data,
        '-k',
        sockets,
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'max_connections=200',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    proc.stdout!.on('data', (d: Buffer) => (output += d.toString()))
    proc.stderr!.on('data', (d: Buffer) => (output += d.toString()))
    let exited = false
    proc.once('exit', () => (exited = true))
    child = proc
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline) {
      if (exited) return false
      if (output.includes('ready to accept connections') && (await listening(port))) return true
      await sleep(20)
    }
    proc.kill('SIGKILL')
    return false
  }

  const postmasterPid = (): number | null => {
    try {
      const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
      return Number.isSafeInteger(pid) && pid > 0 ? pid : null
    } catch {
      return null
    }
  }
  const halt = async (): Promise<void> => {
    const proc = child
    child = null
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    // The postmaster's own pid (runuser is its parent); SIGINT is the fast shutdown.
    const pid = postmasterPid()
    const signal = (sig: NodeJS.Signals) => {
      try {
        if (pid !== null) process.kill(pid, sig)
        else proc.kill(sig)
      } catch {
        /* gone already */
      }
    }
    signal('SIGINT')
    const force = setTimeout(() => signal('SIGKILL'), 5_000)
    await exited
    clearTimeout(force)
  }

  let port = 0
  for (let attempt = 0; ; attempt++) {
    port = await freePort()
    if (await launch(port)) break
    if (attempt === 4) throw new Error(`postgres did not start:\n${output}`)
  }

  return {
    port,
    get pid() {
      return child?.pid
    },
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    halt,
    restart: async () => {
      await halt()
      if (!(await launch(port))) throw new Error(`postgres did not restart on port ${port}:\n${output}`)
    },
    stop: async () => {
      await halt()
      fs.rmSync(root, { recursive: true, force: true })
    },
    tool: (name, args) => {
      const r = spawnSync(
        RUNUSER,
        [
          '-u',
          'postgres',
          '--',
          path.join(PG_BIN, name),
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-U',
          'postgres',
          ...args,
        ],
        { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
      )
      if (r.status !== 0) throw new Error(`${name} failed:\n${r.stderr}`)
      return r.stdout
    },
  }
}
