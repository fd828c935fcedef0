// A throwaway 3-master Redis Cluster on loopback: three `redis-server --cluster-enabled yes`
// (free ports, no persistence, each stopped by its pid), joined with
// `redis-cli --cluster create ... --cluster-yes`; ready once every node reports cluster_state:ok.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { startRedisServer, type RedisServer } from './redis-server'

const run = promisify(execFile)

export interface RedisClusterServers {
  nodes: RedisServer[]
  ports: number[]
  stop(): Promise<void>
}

async function clusterState(port: number): Promise<string> {
  try {
    const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'CLUSTER', 'INFO'], {
      timeout: 2_000,
    })
    return /cluster_state:(\w+)/.exec(stdout)?.[1] ?? 'unknown'
  } catch {
    return 'unreachable'
  }
}

/** Resolves once every port in `ports` reports `state` (polling CLUSTER INFO), or throws after `ms`. */
export async function waitForClusterState(ports: number[], state: 'ok' | 'fail', ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const states = await Promise.all(ports.map(clusterState))
    if (states.every((s) => s === state)) return
    if (Date.now() > deadline) throw new Error(`cluster did not reach ${state} within ${ms} ms: ${states.join(', ')}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export async function startRedisCluster(): Promise<RedisClusterServers> {
  const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000']
  const nodes = await Promise.all([0, 1, 2].map(() => startRedisServer(args)))
  const ports = nodes.map((n) => n.port)
  const stop = async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()))
  }
  try {
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes'], {
      timeout: 30_000,
    })
    await waitForClusterState(ports, 'ok')
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes, ports, stop }
}
