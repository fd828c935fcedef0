// A throwaway Sentinel topology on loopback: one master, one replica, one redis-sentinel, with
// tight timeouts (down after 1 s) so a failover takes a few seconds. Free ports, no persistence,
// each process stopped by its pid.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { findBinary, freePort, ping, startRedisServer, type RedisServer } from './redis-server'

const run = promisify(execFile)
export const MASTER_NAME = 'ssmaster'

export interface SentinelTopology {
  master: RedisServer
  replica: RedisServer
  sentinelPort: number
  /** The address Sentinel currently names as master. */
  masterPort(): Promise<number>
  stop(): Promise<void>
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 2_000 })
  return stdout
}

async function until(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await cond().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function startSentinel(masterPort: number): Promise<{ port: number; stop(): Promise<void> }> {
  const bin = findBinary('redis-sentinel')
  if (bin === null) throw new Error('redis-sentinel is not installed (Debian: apt-get install redis-sentinel)')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-sentinel-'))
  const port = await freePort()
  const conf = path.join(dir, 'sentinel.conf') // Sentinel rewrites its config: it must be writable
  fs.writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
      `sentinel failover-timeout ${MASTER_NAME} 3000`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
      '',
    ].join('\n'),
  )
  const child: ChildProcess = spawn(bin, [conf], { stdio: 'ignore' })
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()))
      process.kill(child.pid!, 'SIGKILL')
      await exited
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    await until('redis-sentinel answers PING', () => ping(port), 5_000)
  } catch (err) {
    await stop()
    throw err
  }
  return { port, stop }
}

export async function startSentinelTopology(): Promise<SentinelTopology> {
  const master = await startRedisServer()
  const replica = await startRedisServer(['--replicaof', '127.0.0.1', String(master.port)])
  let sentinel: { port: number; stop(): Promise<void> } | null = null
  const stop = async () => {
    await sentinel?.stop()
    await Promise.allSettled([master.stop(), replica.stop()])
  }
  try {
    await until(
      'replica in sync',
      async () => /master_link_status:up/.test(await cli(replica.port, 'INFO', 'replication')),
      10_000,
    )
    sentinel = await startSentinel(master.port)
    const s = sentinel
    // Sentinel learns the replica from the master's INFO: a failover needs it known
    await until(
      'sentinel knows the replica',
      async () => (await cli(s.port, 'SENTINEL', 'REPLICAS', MASTER_NAME)).includes(String(replica.port)),
      15_000,
    )
  } catch (err) {
    await stop()
    throw err
  }
  const sentinelPort = sentinel.port
  return {
    master,
    replica,
    sentinelPort,
    masterPort: async () =>
      Number((await cli(sentinelPort, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)).trim().split('\n')[1]),
    stop,
  }
}
