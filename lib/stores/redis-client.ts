// One small adapter over the Redis clients people already have: node-redis v5 or v6 (createClient,
// createCluster) and ioredis (Redis, Cluster, Sentinel through Redis options). The store speaks
// only through it: raw commands that touch one key (or keys sharing its hash slot), so the same
// code runs on one server, a Sentinel-managed master and a Redis Cluster. Nothing is imported from
// either client package: both stay optional peers, and the objects are checked structurally.
import { describe } from '../core/validate'

export type RedisArg = string | Buffer

/**
 * Runs SCAN on one server: the next cursor and the keys of this page. `match` and the keys are
 * named as `send` names them: a prefix the client adds to every command's keys (ioredis
 * `keyPrefix`) is added to the pattern and stripped from the keys here, since clients leave SCAN
 * alone.
 */
export type RedisScanner = (cursor: string, match: string, count: number) => Promise<[string, string[]]>

export interface RedisLink {
  /** Which client this is, for messages and inspect. */
  readonly kind: 'node-redis' | 'node-redis cluster' | 'ioredis' | 'ioredis cluster'
  /** Connected and serving; false while connecting, reconnecting, failing over or closed. */
  ready(): boolean
  /**
   * One command routed by `key` (every key it names must share `key`'s hash slot). With `binary`,
   * bulk-string replies are Buffers (envelopes are binary); otherwise strings.
   */
  send(key: string, args: readonly RedisArg[], binary: boolean): Promise<unknown>
  /** One scanner per master (a single server: just itself); SCAN sees only the node it runs on. */
  scanners(): Promise<RedisScanner[]>
  /** False when a lost connection would surface as an unhandled 'error' event (ends the process). */
  hasErrorListener(): boolean
}

const SUPPORTED =
  "a node-redis v5 or v6 client (createClient() or createCluster() from 'redis') or an ioredis client (new Redis(), new Redis.Cluster(), or Sentinel through new Redis({ sentinels, name }))"

// RESP type byte of a bulk string ('$'): node-redis's RESP_TYPES.BLOB_STRING (v5 and v6).
const BINARY = { typeMapping: { 36: Buffer } }

type Fn = (...args: unknown[]) => unknown
type Obj = Record<string, unknown>
const isFn = (o: Obj, name: string): boolean => typeof o[name] === 'function'

/** The adapter for `client`, or a TypeError naming what is supported. */
export function linkRedis(client: unknown, what = 'options.client'): RedisLink {
  if (typeof client !== 'object' || client === null)
    throw new TypeError(`${what} must be ${SUPPORTED}, got ${describe(client)}`)
  const c = client as Obj
  if (isFn(c, 'callBuffer') && isFn(c, 'call') && typeof c.status === 'string') {
    const keyPrefix = ioredisKeyPrefix(c, what)
    return c.isCluster === true && isFn(c, 'nodes') ? ioredisCluster(c, keyPrefix) : ioredis(c, keyPrefix)
  }
  if (isFn(c, 'sendCommand') && isFn(c, 'withTypeMapping')) {
    return Array.isArray(c.masters) && isFn(c, 'nodeClient') ? nodeRedisCluster(c) : nodeRedis(c)
  }
  if (isFn(c, 'commandOptions')) {
    throw new TypeError(`${what} looks like a node-redis v4 client, which is not supported: pass ${SUPPORTED}`)
  }
  throw new TypeError(`${what} must be ${SUPPORTED}, got ${describe(client)}`)
}

/** A literal string inside a SCAN MATCH pattern. */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&')
}

/**
 * The prefix ioredis adds to the keys of every command sent through `c` (its `keyPrefix` option;
 * a Cluster takes its own or its redisOptions' one), '' when none. SCAN gets none of it.
 */
function ioredisKeyPrefix(c: Obj, what: string): string {
  const options = c.options as Obj | null | undefined
  const value = typeof options === 'object' && options !== null ? options.keyPrefix : undefined
  if (value === undefined || value === null || value === '') return ''
  if (typeof value === 'string') return value
  // A Buffer prefix works if it is text: SCAN replies are compared as UTF-8 strings.
  if (Buffer.isBuffer(value) && Buffer.from(value.toString('utf8')).equals(value)) return value.toString('utf8')
  throw new TypeError(
    `${what} has a keyPrefix that is not UTF-8 text, which dump() could not match: got ${describe(value)}`,
  )
}

function errorListeners(c: Obj): () => boolean {
  return () => !isFn(c, 'listenerCount') || (c.listenerCount as Fn).call(c, 'error') !== 0
}

function scanArgs(cursor: string, match: string, count: number): string[] {
  // TYPE string: session values are strings; anything else under our prefix is not ours to read.
  return ['SCAN', cursor, 'MATCH', match, 'COUNT', String(count), 'TYPE', 'string']
}

function scanReply(reply: unknown): [string, string[]] {
  if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[1])) {
    throw new TypeError(`unexpected SCAN reply from the Redis client: ${describe(reply)}`)
  }
  return [String(reply[0]), (reply[1] as unknown[]).map((k) => (Buffer.isBuffer(k) ? k.toString('utf8') : String(k)))]
}

function nodeRedis(c: Obj): RedisLink {
  const send = c.sendCommand as (args: readonly RedisArg[], options?: unknown) => Promise<unknown>
  const scanner: RedisScanner = async (cursor, match, count) =>
    scanReply(await send.call(c, scanArgs(cursor, match, count)))
  return {
    kind: 'node-redis',
    ready: () => c.isReady === true,
    send: (_key, args, binary) => send.call(c, args, binary ? BINARY : undefined),
    scanners: async () => [scanner],
    hasErrorListener: errorListeners(c),
  }
}

function nodeRedisCluster(c: Obj): RedisLink {
  const send = c.sendCommand as (
    key: string,
    readonly: boolean | undefined,
    args: readonly RedisArg[],
    options?: unknown,
  ) => Promise<unknown>
  const nodeClient = c.nodeClient as (node: unknown) => unknown
  return {
    kind: 'node-redis cluster',
    ready: () => c.isOpen === true,
    send: (key, args, binary) => send.call(c, key, undefined, args, binary ? BINARY : undefined),
    scanners: async () =>
      Promise.all(
        (c.masters as unknown[]).map(async (m) => {
          const node = (await nodeClient.call(c, m)) as Obj
          const sendNode = node.sendCommand as (args: readonly RedisArg[]) => Promise<unknown>
          const scanner: RedisScanner = async (cursor, match, count) =>
            scanReply(await sendNode.call(node, scanArgs(cursor, match, count)))
          return scanner
        }),
      ),
    hasErrorListener: errorListeners(c),
  }
}

function ioredisSender(c: Obj): (args: readonly RedisArg[], binary: boolean) => Promise<unknown> {
  const call = c.call as (command: string, ...args: RedisArg[]) => Promise<unknown>
  const callBuffer = c.callBuffer as (command: string, ...args: RedisArg[]) => Promise<unknown>
  return (args, binary) => (binary ? callBuffer : call).call(c, args[0] as string, ...args.slice(1))
}

function ioredisScanner(c: Obj, keyPrefix: string): RedisScanner {
  const send = ioredisSender(c)
  const pattern = globEscape(keyPrefix)
  return async (cursor, match, count) => {
    const [next, keys] = scanReply(await send(scanArgs(cursor, pattern + match, count), false))
    return [next, keys.filter((k) => k.startsWith(keyPrefix)).map((k) => k.slice(keyPrefix.length))]
  }
}

function ioredis(c: Obj, keyPrefix: string): RedisLink {
  const send = ioredisSender(c)
  return {
    kind: 'ioredis',
    // 'ready' only: while (re)connecting or failing over, ioredis would park commands in its
    // offline queue; we refuse at once instead.
    ready: () => c.status === 'ready',
    send: (_key, args, binary) => send(args, binary),
    scanners: async () => [ioredisScanner(c, keyPrefix)],
    hasErrorListener: errorListeners(c),
  }
}

function ioredisCluster(c: Obj, keyPrefix: string): RedisLink {
  const send = ioredisSender(c)
  const nodes = c.nodes as (role: string) => Obj[]
  return {
    kind: 'ioredis cluster',
    ready: () => c.status === 'ready',
    send: (_key, args, binary) => send(args, binary),
    // The cluster's keyPrefix, not each node's: keys are read through the cluster.
    scanners: async () => nodes.call(c, 'master').map((node) => ioredisScanner(node, keyPrefix)),
    hasErrorListener: errorListeners(c),
  }
}
