// The Lua scripts of RedisSessionStore. Each runs on ONE key (so it runs on Redis Cluster), and is
// sent as EVALSHA, falling back to EVAL once when the server does not know it yet (NOSCRIPT: a
// fresh server, a failover, SCRIPT FLUSH).
import { createHash } from 'node:crypto'
import type { RedisArg } from './redis-client'

export interface RedisScript {
  readonly source: string
  readonly sha: string
}

function script(source: string): RedisScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/**
 * Compare-and-swap of a session value, one round trip per attempt.
 * KEYS[1] the session key. ARGV[1] what the current value must start with (its version header;
 * '' = insert only if absent), ARGV[2] the new value, ARGV[3] PX, ARGV[4] GETRANGE end of a
 * bounded read, ARGV[5] another accepted start ('SEAL': a 0.1 value, which is version 1) or '',
 * ARGV[6] the hex key ids the writer can open, each between commas (',ab12cd34,ef56...,').
 * Replies 1 when written; 0 when there is nothing to update (missing, not a string, or sealed
 * under a key the writer no longer has: unreadable counts as gone, as it does for a read); else
 * the current value, bounded like a read (someone else wrote meanwhile: merge and retry).
 */
export const SWAP = script(`
local t = redis.call('TYPE', KEYS[1])['ok']
if ARGV[1] == '' then
  if t ~= 'string' then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
  end
else
  if t ~= 'string' then return 0 end
  local head = redis.call('GETRANGE', KEYS[1], 0, #ARGV[1] - 1)
  local at = -1
  if head == ARGV[1] then at = 24 elseif ARGV[5] ~= '' and string.sub(head, 1, #ARGV[5]) == ARGV[5] then at = 8 end
  if at >= 0 then
    -- the envelope's key id (4 bytes at offset 8 of the envelope, after the 16-byte version header)
    local kid = redis.call('GETRANGE', KEYS[1], at, at + 3)
    if #kid ~= 4 or not string.find(ARGV[6], ',' .. string.format('%02x%02x%02x%02x', string.byte(kid, 1, 4)) .. ',', 1, true) then return 0 end
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
  end
end
return redis.call('GETRANGE', KEYS[1], 0, tonumber(ARGV[4]))
`)

/**
 * Removes a session key and replies with what it held (bounded), so the caller can read the
 * identity whose index entry goes too. KEYS[1] the session key. ARGV[1] the version header the
 * value must start with ('' = remove whatever is there), ARGV[2] another accepted start ('SEAL')
 * or '', ARGV[3] GETRANGE end. Replies 0 when nothing was removed, 1 when a non-string was, else
 * the removed value.
 */
export const REMOVE = script(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then return 0 end
if t ~= 'string' then
  if ARGV[1] ~= '' then return 0 end
  redis.call('DEL', KEYS[1])
  return 1
end
local value = redis.call('GETRANGE', KEYS[1], 0, tonumber(ARGV[3]))
if ARGV[1] ~= '' then
  local head = string.sub(value, 1, #ARGV[1])
  if head ~= ARGV[1] and (ARGV[2] == '' or string.sub(value, 1, #ARGV[2]) ~= ARGV[2]) then return 0 end
end
redis.call('DEL', KEYS[1])
return value
`)

/**
 * Adds a session to an identity's index (a sorted set: member = storage name, score = the
 * session's expiry, only ever raised: GT), drops entries already expired, and lets the whole
 * index expire with its last session. Every write of an indexed session refreshes its entry, so
 * the score follows the session's real expiry.
 * KEYS[1] the index key. ARGV[1] storage name, ARGV[2] its expiry (ms since the epoch), ARGV[3] now.
 */
export const INDEX_ADD = script(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'zset' and t ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return 1
`)

/**
 * The live entries of an index as [name, expiry, name, expiry, ...], pruning expired ones; {} for
 * anything that is not an index. KEYS[1] the index key. ARGV[1] now.
 */
export const INDEX_LIST = script(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'zset' then return {} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
`)

/**
 * Raises an identity's revocation mark (a decimal integer string) to ARGV[1] if that is higher;
 * a mark never goes down. KEYS[1] the mark key.
 */
export const MARK_RAISE = script(`
local t = redis.call('TYPE', KEYS[1])['ok']
local current = 0
if t == 'string' then current = tonumber(redis.call('GET', KEYS[1])) or 0 end
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
`)

/** EVALSHA args of `s` on `key` with `argv`; swap 'EVALSHA'/sha for 'EVAL'/source on NOSCRIPT. */
export function evalArgs(s: RedisScript, key: string, argv: readonly RedisArg[], source = false): RedisArg[] {
  return [source ? 'EVAL' : 'EVALSHA', source ? s.source : s.sha, '1', key, ...argv]
}

export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT')
}
