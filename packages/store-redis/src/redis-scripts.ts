import { createHash } from 'node:crypto';
import { StorageError } from '@ctx/core';
import type { Cluster, Redis } from 'ioredis';

/** A Lua script and its SHA1 digest (what `EVALSHA` takes). */
export interface RedisScript {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

/** A script with its digest computed once. */
export function defineScript(name: string, lua: string): RedisScript {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

// Every script derives the keys it cannot know in advance (another user's index, the session key
// behind an index member) from `base`, the declared meta key minus its trailing "meta". They all
// carry the same `{prefix}` hash tag, so they live in the slot of the declared keys: Redis Cluster
// runs such scripts, and a client-side ioredis `keyPrefix` is kept because it is part of `base`.
//
// The meta hash never expires. Its record of a session is `[version, indexMember, userId|null]`
// while the session is live, and stays so after Redis expired the session key (the version is
// what a re-create continues from). A delete, or `purgeExpired` meeting an expired session, turns
// it into the tombstone `[version, false, false, madeAtMs]` and adds the id to the tombstone set.
//
// The turn log of a session is the hash `t:<id>` (turnId → `[sequence, recordedAt, userId,
// messages]` while pending, `[sequence]` once folded), with `tp:<id>` (pending ids by sequence) and
// `tf:<id>` (folded ids by fold time) beside it, and three prefix-wide indexes: `pending` (sessions
// by their oldest pending turn's recordedAt), `folded` (sessions by their oldest fold time) and
// `leases` (by expiry, with the holders in `holders`). Times are the repository's `now`, never TIME.

/** Removes a session's index entries, history and schedule, and leaves its tombstone. */
const BURY_FUNCTION = `
local function bury(base, meta, all, expiry, tomb, id, record, version, at)
  if record then
    redis.call('ZREM', all, record[2])
    if type(record[3]) == 'string' then redis.call('ZREM', base .. 'u:' .. record[3], record[2]) end
  end
  redis.call('DEL', base .. 'h:' .. id)
  redis.call('ZREM', expiry, id)
  redis.call('HSET', meta, id, '[' .. string.format('%d', version) .. ',false,false,' .. at .. ']')
  redis.call('ZADD', tomb, at, id)
end
`;

/**
 * Marks the pending turns named in `ARGV[first..]` folded at `at`: each keeps its sequence in the
 * log (recording its id again is a duplicate) and drops its messages, and the session's entries in
 * the pending and folded indexes follow. Ids that are not pending are ignored.
 */
const FOLD_FUNCTION = `
local function fold(log, pending, folded, pendingIndex, foldedIndex, id, at, first)
  local count = 0
  for i = first, #ARGV do
    local turn = ARGV[i]
    local sequence = redis.call('ZSCORE', pending, turn)
    if sequence then
      redis.call('ZREM', pending, turn)
      redis.call('HSET', log, turn, '[' .. sequence .. ']')
      redis.call('ZADD', folded, at, turn)
      count = count + 1
    end
  end
  if count == 0 then return end
  local head = redis.call('ZRANGE', pending, 0, 0)
  local recordedAt = false
  if head[1] then
    recordedAt = string.match(redis.call('HGET', log, head[1]) or '', '^%[[^,]*,([^,]+),')
  end
  if recordedAt then
    redis.call('ZADD', pendingIndex, recordedAt, id)
  elseif head[1] == nil then
    redis.call('ZREM', pendingIndex, id)
  end
  local oldest = redis.call('ZSCORE', foldedIndex, id)
  if not oldest or tonumber(at) < tonumber(oldest) then redis.call('ZADD', foldedIndex, at, id) end
end
`;

/**
 * Compare-and-set write, folding turns when it writes.
 * KEYS: session, history, meta, all, expiry, tombstones, turn log, pending turns, folded turns,
 * pending sessions, folded sessions, [user index].
 * ARGV: sessionId, expectedVersion (0 = no live session), the document without its version (ends
 * in `"version":`), the index record without its version (`"member","userId"]`), member, ttlMs
 * (0 = none), historyLimit (0 = none), expiresAt (ms, with a TTL), now (ms), then the ids of the
 * turns the write folds (none, one or more).
 * The stored version is `expectedVersion + 1`, or on a create the last version of the id (kept by
 * its tombstone or by the record of its expired session) plus one.
 * Returns `{1, version}` when written, `{0, currentVersion}` on conflict (0 = no live session),
 * `{2, 0}` when the session key holds something that is not a ctx document. Only a write folds.
 */
export const SAVE_SCRIPT = defineScript(
  'save',
  `${FOLD_FUNCTION}
local id = ARGV[1]
local expected = tonumber(ARGV[2])
local ttl = tonumber(ARGV[6])
local keep = tonumber(ARGV[7])
local base = string.sub(KEYS[3], 1, -5)
local raw = redis.call('HGET', KEYS[3], id)
local old = false
if raw then old = cjson.decode(raw) end
local live = old and type(old[2]) == 'string'
local current = 0
local last = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  if live then
    current = old[1]
  else
    local ok, doc = pcall(cjson.decode, redis.call('GET', KEYS[1]))
    if not ok or type(doc) ~= 'table' or type(doc.version) ~= 'number' then return {2, 0} end
    current = doc.version
  end
  last = current
elseif old then
  last = old[1]
end
if current ~= expected then return {0, current} end
local version = string.format('%d', last + 1)
if live then
  redis.call('ZREM', KEYS[4], old[2])
  if type(old[3]) == 'string' then redis.call('ZREM', base .. 'u:' .. old[3], old[2]) end
end
local document = ARGV[3] .. version .. '}'
if ttl > 0 then
  redis.call('SET', KEYS[1], document, 'PX', ARGV[6])
else
  redis.call('SET', KEYS[1], document)
end
redis.call('HSET', KEYS[3], id, '[' .. version .. ',' .. ARGV[4])
redis.call('ZADD', KEYS[4], 0, ARGV[5])
if KEYS[12] then redis.call('ZADD', KEYS[12], 0, ARGV[5]) end
if ttl > 0 then
  redis.call('ZADD', KEYS[5], ARGV[8], id)
else
  redis.call('ZREM', KEYS[5], id)
end
if current == 0 then
  if old then redis.call('ZREM', KEYS[6], id) end
  redis.call('DEL', KEYS[2])
elseif keep == 0 then
  redis.call('DEL', KEYS[2])
end
if keep > 0 then
  redis.call('LPUSH', KEYS[2], document)
  redis.call('LTRIM', KEYS[2], 0, keep - 1)
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], ARGV[6])
  else
    redis.call('PERSIST', KEYS[2])
  end
end
if #ARGV > 9 then fold(KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], id, ARGV[9], 10) end
return {1, last + 1}
`,
);

/**
 * Conditional delete: removes the live session only when the owner and version match, leaving a
 * tombstone with its version. When it removes the session, or finds none live and the delete is
 * unconditional, the session's turn log (pending turns and folded ids) and lease go too; a refusal
 * touches nothing.
 * KEYS: session, history, meta, all, expiry, tombstones, turn log, pending turns, folded turns,
 * pending sessions, folded sessions, leases, lease holders.
 * ARGV: sessionId, userId ('' = whoever owns it), expectedVersion (0 = any), now (ms).
 * Returns `{1, version}` removed, `{0, 0}` no live session, `{2, version}` owned by another user,
 * `{3, version}` at another version, `{4, 0}` the key holds something that is not a ctx document.
 */
export const DELETE_SCRIPT = defineScript(
  'delete',
  `${BURY_FUNCTION}
local function forgetTurns(id)
  redis.call('DEL', KEYS[7], KEYS[8], KEYS[9])
  redis.call('ZREM', KEYS[10], id)
  redis.call('ZREM', KEYS[11], id)
  redis.call('ZREM', KEYS[12], id)
  redis.call('HDEL', KEYS[13], id)
end
local id = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then
  -- Pending turns of a session not created yet belong to their senders: only an unconditional
  -- (trusted) delete drops them.
  if ARGV[2] == '' and tonumber(ARGV[3]) == 0 then forgetTurns(id) end
  return {0, 0}
end
local raw = redis.call('HGET', KEYS[3], id)
local record = false
if raw then record = cjson.decode(raw) end
local version, owner
if record and type(record[2]) == 'string' then
  version = record[1]
  owner = record[3]
else
  -- A document written without bookkeeping (by hand): its own fields are the truth.
  record = false
  local ok, doc = pcall(cjson.decode, redis.call('GET', KEYS[1]))
  if not ok or type(doc) ~= 'table' or type(doc.version) ~= 'number' then return {4, 0} end
  version = doc.version
  owner = doc.userId
end
if ARGV[2] ~= '' and type(owner) == 'string' and owner ~= ARGV[2] then return {2, version} end
local expected = tonumber(ARGV[3])
if expected > 0 and version ~= expected then return {3, version} end
redis.call('DEL', KEYS[1])
bury(string.sub(KEYS[3], 1, -5), KEYS[3], KEYS[4], KEYS[5], KEYS[6], id, record, version, ARGV[4])
forgetTurns(id)
return {1, version}
`,
);

/**
 * One page of a list index, newest first, with lazy cleanup: entries whose session is gone
 * (expired, deleted, or moved to another position) are removed from the indexes as they are met.
 * The bookkeeping of an expired session stays for `purgeExpired`, which turns it into a tombstone.
 * KEYS: index (user or all), meta, all. ARGV: exclusive upper bound ('+' for the start), how many
 * live sessions are wanted, how many entries may be examined at most.
 * Returns `{exhausted, lastBound, json...}`: `exhausted` is 1 when the index has nothing left below
 * `lastBound`; with 0 and fewer documents than wanted, call again from `lastBound`.
 */
export const LIST_SCRIPT = defineScript(
  'list',
  `
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
    local record = false
    if raw then record = cjson.decode(raw) end
    local current = record and record[2] == member
    local json = false
    if current then json = redis.call('GET', base .. 's:' .. id) end
    if json then
      found = found + 1
      out[#out + 1] = json
    else
      redis.call('ZREM', KEYS[1], member)
      redis.call('ZREM', KEYS[3], member)
      if current and type(record[3]) == 'string' then
        redis.call('ZREM', base .. 'u:' .. record[3], member)
      end
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
 * Reclaims space in four steps. Sessions whose expiry time has passed and whose key Redis has
 * expired become tombstones made at their expiry time (index entries, history and schedule
 * removed). Then tombstones made before `tombstonesBefore` are forgotten, and so are turn ids
 * folded before it (at most a batch of ids per call). Last, leases expired at `now` go (an expired
 * lease is no lease: only space is reclaimed).
 * KEYS: expiry, meta, all, tombstones, folded sessions, leases, lease holders.
 * ARGV: batch size, now (ms), tombstonesBefore (ms).
 * Returns `{tombstoned, expiredExamined, tombstonesExamined, foldedSessionsExamined,
 * foldedIdsForgotten, leasesExamined}`; call again while any count but the first equals the batch
 * size.
 */
export const PURGE_SCRIPT = defineScript(
  'purge',
  `${BURY_FUNCTION}
local base = string.sub(KEYS[2], 1, -5)
local batch = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, batch)
local tombstoned = 0
for i = 1, #due, 2 do
  local id = due[i]
  local ttl = redis.call('PTTL', base .. 's:' .. id)
  if ttl == -2 then
    local raw = redis.call('HGET', KEYS[2], id)
    local record = false
    if raw then record = cjson.decode(raw) end
    if record and type(record[2]) == 'string' then
      bury(base, KEYS[2], KEYS[3], KEYS[1], KEYS[4], id, record, record[1], due[i + 1])
      tombstoned = tombstoned + 1
    else
      redis.call('ZREM', KEYS[1], id)
      redis.call('DEL', base .. 'h:' .. id)
    end
  elseif ttl == -1 then
    redis.call('ZREM', KEYS[1], id)
  else
    redis.call('ZADD', KEYS[1], string.format('%d', tonumber(ARGV[2]) + ttl + 1), id)
  end
end
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[3], 'LIMIT', 0, batch)
for i = 1, #old do
  local raw = redis.call('HGET', KEYS[2], old[i])
  if raw and cjson.decode(raw)[2] == false then redis.call('HDEL', KEYS[2], old[i]) end
  redis.call('ZREM', KEYS[4], old[i])
end
local budget = batch
local sessions = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[3], 'LIMIT', 0, batch)
for i = 1, #sessions do
  if budget == 0 then break end
  local id = sessions[i]
  local folded = base .. 'tf:' .. id
  local log = base .. 't:' .. id
  local ids = redis.call('ZRANGEBYSCORE', folded, '-inf', '(' .. ARGV[3], 'LIMIT', 0, budget)
  for j = 1, #ids do
    redis.call('HDEL', log, ids[j])
    redis.call('ZREM', folded, ids[j])
  end
  budget = budget - #ids
  local head = redis.call('ZRANGE', folded, 0, 0, 'WITHSCORES')
  if head[1] then
    redis.call('ZADD', KEYS[5], head[2], id)
  else
    redis.call('ZREM', KEYS[5], id)
  end
end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', ARGV[2], 'LIMIT', 0, batch)
for i = 1, #lapsed do
  redis.call('ZREM', KEYS[6], lapsed[i])
  redis.call('HDEL', KEYS[7], lapsed[i])
end
return {tombstoned, #due / 2, #old, #sessions, batch - budget, #lapsed}
`,
);

/** A client the scripts can run on: a standalone ioredis client or an ioredis Cluster. */
export type RedisClient = Redis | Cluster;

/** A script's array reply, or `STORAGE_ERROR` when the server answered something else. */
export function asArray(reply: unknown, action: string): unknown[] {
  if (!Array.isArray(reply)) {
    throw new StorageError(
      'STORAGE_ERROR',
      `Redis ${action} returned an unexpected reply: ${String(reply)}`,
    );
  }
  return reply;
}

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
