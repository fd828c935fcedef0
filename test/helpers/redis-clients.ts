// The two Redis clients RedisSessionStore accepts, connected the same way for every suite:
// node-redis and ioredis, quick reconnects (short outage tests), an 'error' listener (a lost
// connection must not end the test process), and a way to wrap their commands (e.g. to hook one
// command's reply).
import { Redis, Cluster } from 'ioredis'
import { createClient, createCluster } from 'redis'
import type { RedisClientLike } from '../../lib/stores/redis-store'

export const CLIENT_KINDS = ['node-redis', 'ioredis'] as const
export type ClientKind = (typeof CLIENT_KINDS)[number]

export interface TestClient {
  kind: ClientKind
  client: RedisClientLike
  ready(): boolean
  close(): Promise<void>
  /** A view of the same connection where `hook` runs around each `command` (e.g. 'GETRANGE'):
   *  after its reply arrived (default) or before it is sent. */
  intercept(command: string, hook: (args: unknown[]) => Promise<void>, when?: 'before' | 'after'): RedisClientLike
}

const quiet = () => {}

/** Runs around one command: `cmd` is its name as the store spelled it, `args` the whole command
 *  (name first), `next` sends it and gives its reply. Whatever it returns is the command's reply. */
export type CommandWrapper = (cmd: string, args: unknown[], next: () => Promise<unknown>) => Promise<unknown>

type NodeRedis = ReturnType<typeof createClient>

/** A view of the same connection (node-redis or ioredis) where every command goes through `wrapper`. */
export function wrapCommands(c: NodeRedis | Redis, wrapper: CommandWrapper): RedisClientLike {
  if (c instanceof Redis) {
    const wrap =
      (f: (cmd: string, ...a: unknown[]) => Promise<unknown>) =>
      (cmd: string, ...a: unknown[]) =>
        wrapper(cmd, [cmd, ...a], () => f.call(c, cmd, ...a))
    return {
      get status() {
        return c.status
      },
      listenerCount: (e: string) => c.listenerCount(e),
      call: wrap(c.call as never),
      callBuffer: wrap(c.callBuffer as never),
    } as unknown as RedisClientLike
  }
  return {
    get isReady() {
      return c.isReady
    },
    listenerCount: (e: string) => c.listenerCount(e),
    withTypeMapping: c.withTypeMapping.bind(c),
    sendCommand: (args: unknown[], options?: unknown) =>
      wrapper(String(args[0]), args, () => c.sendCommand(args as string[], options as never)),
  } as unknown as RedisClientLike
}

function interceptView(
  c: NodeRedis | Redis,
  command: string,
  hook: (args: unknown[]) => Promise<void>,
  when = 'after',
): RedisClientLike {
  return wrapCommands(c, async (cmd, args, next) => {
    const hit = cmd.toUpperCase() === command
    if (hit && when === 'before') await hook(args)
    const reply = await next()
    if (hit && when === 'after') await hook(args)
    return reply
  })
}

/** A connected client of `kind` to a standalone server on 127.0.0.1:port. */
export async function connectClient(kind: ClientKind, port: number): Promise<TestClient> {
  if (kind === 'node-redis') {
    const c = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: () => 50 } })
    c.on('error', quiet)
    await c.connect()
    return {
      kind,
      client: c,
      ready: () => c.isReady,
      close: async () => {
        if (c.isOpen) await c.close().catch(quiet)
      },
      intercept: (command, hook, when) => interceptView(c, command, hook, when),
    }
  }
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 1 })
  c.on('error', quiet)
  await c.connect()
  return {
    kind,
    client: c,
    ready: () => c.status === 'ready',
    close: async () => {
      c.disconnect()
    },
    intercept: (command, hook, when) => interceptView(c, command, hook, when),
  }
}

/** A client of `kind` that was never connected (and no 'error' listener). */
export function unconnectedClient(kind: ClientKind, port: number): { client: RedisClientLike; isOpen(): boolean } {
  if (kind === 'node-redis') {
    const c = createClient({ url: `redis://127.0.0.1:${port}` })
    return { client: c, isOpen: () => c.isOpen }
  }
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true })
  return { client: c, isOpen: () => c.status !== 'wait' }
}

/** A connected cluster client of `kind`, given the ports of its masters. */
export async function connectCluster(kind: ClientKind, ports: number[]): Promise<TestClient> {
  if (kind === 'node-redis') {
    const c = createCluster({
      rootNodes: ports.map((p) => ({ url: `redis://127.0.0.1:${p}` })),
      defaults: { socket: { reconnectStrategy: () => 50 } },
    })
    c.on('error', quiet)
    await c.connect()
    return {
      kind,
      client: c,
      ready: () => c.isOpen,
      // destroy, not close: close() waits for nodes that may have been killed by the test
      close: async () => {
        if (c.isOpen) c.destroy()
      },
      intercept: () => {
        throw new Error('intercept: standalone clients only')
      },
    }
  }
  const c = new Cluster(
    ports.map((port) => ({ host: '127.0.0.1', port })),
    { clusterRetryStrategy: () => 50, redisOptions: { maxRetriesPerRequest: 1 } },
  )
  c.on('error', quiet)
  await new Promise<void>((resolve, reject) => {
    c.once('ready', resolve)
    c.once('end', () => reject(new Error('ioredis cluster ended before ready')))
  })
  return {
    kind,
    client: c,
    ready: () => c.status === 'ready',
    close: async () => {
      c.disconnect()
    },
    intercept: () => {
      throw new Error('intercept: standalone clients only')
    },
  }
}
