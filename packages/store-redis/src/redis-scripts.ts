import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** A Lua script and its SHA1 digest (what `EVALSHA` takes). */
export interface RedisScript {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

function defineScript(name: string, lua: string): RedisScript {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

// Every script derives the keys it cannot know in advance (another user's index, the session key
// behind an index member) from `base`, the declared meta key minus its trailing "meta". They all
// carry the same `{prefix}` hash tag, so they live in the slot of the declared keys: Redis Cluster
// runs such scripts, and a client-side ioredis `keyPrefix` is kept because it is part of `base`.
// Index bookkeeping lives in the meta hash, which does not expire: `record` is
// `[version, indexMember, userId|null]`.

const DROP_FUNCTION = `
local function drop(base, meta, all, expiry, id, raw)
  local record = cjson.decode(raw)
  redis.call('ZREM', all, record[2])
  if type(record[3]) == 'string' then redis.call('ZREM', base .. 'u:' .. record[3], record[2]) end
  redis.call('HDEL', meta, id)
  redis.call('ZREM', expiry, id)
  redis.call('DEL', base .. 'h:' .. id)
end
`;

/**
 * Compare-and-set write.
 * KEYS: session, history, meta, all, expiry, [user index].
 * ARGV: sessionId, expectedVersion (0 = must be absent), json, record, member, ttlMs (0 = none),
 * historyLimit (0 = none).
 * Returns `{1, version}` when written, `{0, currentVersion}` on conflict (0 = absent),
 * `{2, 0}` when the session key holds something that is not a ctx document.
 */
export const SAVE_SCRIPT = defineScript(
  'save',
  `
local id = ARGV[1]
local expected = tonumber(ARGV[2])
local ttl = tonumber(ARGV[6])
local keep = tonumber(ARGV[7])
local base = string.sub(KEYS[3], 1, -5)
local raw = redis.call('HGET', KEYS[3], id)
local old = false
if raw then old = cjson.decode(raw) end
local current = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  if old then
    current = old[1]
  else
    local ok, doc = pcall(cjson.decode, redis.call('GET', KEYS[1]))
    if not ok or type(doc) ~= 'table' or type(doc.version) ~= 'number' then return {2, 0} end
    current = doc.version
  end
end
if current ~= expected then return {0, current} end
if old then
  redis.call('ZREM', KEYS[4], old[2])
  if type(old[3]) == 'string' then redis.call('ZREM', base .. 'u:' .. old[3], old[2]) end
end
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[6])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
redis.call('HSET', KEYS[3], id, ARGV[4])
redis.call('ZADD', KEYS[4], 0, ARGV[5])
if KEYS[6] then redis.call('ZADD', KEYS[6], 0, ARGV[5]) end
if ttl > 0 then
  local now = redis.call('TIME')
  local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('ZADD', KEYS[5], nowMs + ttl, id)
else
  redis.call('ZREM', KEYS[5], id)
end
if current == 0 or keep == 0 then redis.call('DEL', KEYS[2]) end
if keep > 0 then
  redis.call('LPUSH', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[2], 0, keep - 1)
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], ARGV[6])
  else
    redis.call('PERSIST', KEYS[2])
  end
end
return {1, expected + 1}
`,
);

/**
 * Delete a session, its history and its index entries.
 * KEYS: session, history, meta, all, expiry. ARGV: sessionId.
 * Returns 1 when a live session was deleted, 0 otherwise.
 */
export const DELETE_SCRIPT = defineScript(
  'delete',
  `
local existed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[5], ARGV[1])
local raw = redis.call('HGET', KEYS[3], ARGV[1])
if raw then
  local old = cjson.decode(raw)
  redis.call('ZREM', KEYS[4], old[2])
  if type(old[3]) == 'string' then
    redis.call('ZREM', string.sub(KEYS[3], 1, -5) .. 'u:' .. old[3], old[2])
  end
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return existed
`,
);

/**
 * One page of a list index, newest first, with lazy cleanup: entries whose session expired (or
 * that no longer match the session's current position) are removed as they are met.
 * KEYS: index (user or all), meta, all, expiry. ARGV: exclusive upper bound ('+' for the start),
 * how many live sessions are wanted, how many entries may be examined at most.
 * Returns `{exhausted, lastBound, json...}`: `exhausted` is 1 when the index has nothing left below
 * `lastBound`; with 0 and fewer documents than wanted, call again from `lastBound`.
 */
export const LIST_SCRIPT = defineScript(
  'list',
  `${DROP_FUNCTION}
local base = string.sub(KEYS[2], 1, -5)
local bound = ARGV[1]
local wanted = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local out = {0, ''}
local found = 0
while found < wanted and budget > 0 do
  local size = math.min(wanted - found, budget)
  local batch = redis.call('ZREVRANGEBYLEX', KEYS[1], bound, '-', 'LIMIT', 0, size)
  for i = 1, #batch do
    local member = batch[i]
    local id = string.sub(member, 19)
    local raw = redis.call('HGET', KEYS[2], id)
    local json = false
    if raw then json = redis.call('GET', base .. 's:' .. id) end
    if json and cjson.decode(raw)[2] == member then
      found = found + 1
      out[#out + 1] = json
    else
      redis.call('ZREM', KEYS[1], member)
      redis.call('ZREM', KEYS[3], member)
      if raw and not json then drop(base, KEYS[2], KEYS[3], KEYS[4], id, raw) end
    end
    bound = '(' .. member
  end
  budget = budget - #batch
  if #batch < size then
    out[1] = 1
    break
  end
end
out[2] = bound
return out
`,
);

/**
 * Remove the leftovers of sessions whose TTL has passed (their keys are already gone: Redis
 * expired them) — index entries, bookkeeping and history.
 * KEYS: expiry, meta, all. ARGV: batch size.
 * Returns `{purged, examined}`; call again while `examined` equals the batch size.
 */
export const PURGE_SCRIPT = defineScript(
  'purge',
  `${DROP_FUNCTION}
local base = string.sub(KEYS[2], 1, -5)
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', nowMs, 'LIMIT', 0, tonumber(ARGV[1]))
local purged = 0
for i = 1, #ids do
  local id = ids[i]
  local ttl = redis.call('PTTL', base .. 's:' .. id)
  if ttl == -2 then
    local raw = redis.call('HGET', KEYS[2], id)
    if raw then
      drop(base, KEYS[2], KEYS[3], KEYS[1], id, raw)
      purged = purged + 1
    else
      redis.call('ZREM', KEYS[1], id)
      redis.call('DEL', base .. 'h:' .. id)
    end
  elseif ttl == -1 then
    redis.call('ZREM', KEYS[1], id)
  else
    redis.call('ZADD', KEYS[1], nowMs + ttl + 1, id)
  end
end
return {purged, #ids}
`,
);

/** A client the scripts can run on: a standalone ioredis client or an ioredis Cluster. */
export type RedisClient = Redis | Cluster;

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * Runs a script by its digest (`EVALSHA`: the script text is not resent on every call). When the
 * server does not know the digest — after a restart, a failover to a replica that never saw it, or
 * `SCRIPT FLUSH` — it is sent once with `EVAL`, which also caches it again.
 */
export async function runScript(
  client: RedisClient,
  script: RedisScript,
  keys: readonly string[],
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  try {
    return await client.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return await client.eval(script.lua, keys.length, ...keys, ...args);
  }
}
