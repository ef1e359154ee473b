import { type Message, StorageError } from '@ctx/core';
import type { ContextDriver } from '@ctx/core/adapter';
import type { RedisKeyLayout } from './redis-keys.js';
import { asArray, defineScript, type RedisClient, runScript } from './redis-scripts.js';

/**
 * Appends one turn, atomically and idempotently: a known id (pending or folded) is a duplicate,
 * a session holding `maxPending` pending turns is full, otherwise the turn takes the prefix's next
 * sequence and `recordedAt = now`, and a session's first pending turn puts it in the pending index.
 * KEYS: turn log, pending turns, pending sessions, turn sequence.
 * ARGV: sessionId, turnId, now (ms), maxPending, the record's tail (`"userId",[messages]]`).
 * Returns `{0, sequence}` recorded, `{1, sequence}` duplicate, `{2, pending}` full, `{3, 0}` the
 * log holds a record that is not a ctx turn.
 */
export const RECORD_TURN_SCRIPT = defineScript(
  'record-turn',
  `
local known = redis.call('HGET', KEYS[1], ARGV[2])
if known then
  local sequence = tonumber(string.match(known, '^%[(%d+)[,%]]'))
  if not sequence then return {3, 0} end
  return {1, sequence}
end
local count = redis.call('ZCARD', KEYS[2])
if count >= tonumber(ARGV[4]) then return {2, count} end
local sequence = string.format('%d', redis.call('INCR', KEYS[4]))
redis.call('HSET', KEYS[1], ARGV[2], '[' .. sequence .. ',' .. ARGV[3] .. ',' .. ARGV[5])
redis.call('ZADD', KEYS[2], sequence, ARGV[2])
if count == 0 then redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1]) end
return {0, tonumber(sequence)}
`,
);

/**
 * The oldest pending turns of a session, in one consistent read.
 * KEYS: turn log, pending turns. ARGV: the index of the last one wanted (limit - 1).
 * Returns `{turnId, record, turnId, record, …}` (an empty record when the log lost it).
 */
export const READ_PENDING_SCRIPT = defineScript(
  'read-pending',
  `
local ids = redis.call('ZRANGE', KEYS[2], 0, ARGV[1])
local out = {}
for i = 1, #ids do
  out[#out + 1] = ids[i]
  out[#out + 1] = redis.call('HGET', KEYS[1], ids[i]) or ''
end
return out
`,
);

/**
 * Takes or renews a session's lease: granted when there is none, when it expired at `now`, or when
 * `holder` holds it; then it expires at `expiresAt`.
 * KEYS: leases, lease holders. ARGV: sessionId, holder, now (ms), expiresAt (ms).
 * Returns 1 when `holder` holds the lease, 0 when another holder's lease is live.
 */
export const LEASE_SCRIPT = defineScript(
  'lease',
  `
local holder = redis.call('HGET', KEYS[2], ARGV[1])
if holder and holder ~= ARGV[2] then
  local expiresAt = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if expiresAt and tonumber(expiresAt) > tonumber(ARGV[3]) then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`,
);

/**
 * Ends `holder`'s lease of a session; another holder's lease stays.
 * KEYS: leases, lease holders. ARGV: sessionId, holder. Returns 1 when it ended a lease.
 */
export const RELEASE_LEASE_SCRIPT = defineScript(
  'release-lease',
  `
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`,
);

/**
 * Sessions whose oldest pending turn was recorded at or before `recordedBefore`, oldest first,
 * leaving out those with a lease live at `now`.
 * KEYS: pending sessions, leases. ARGV: recordedBefore (ms), limit, now (ms).
 * Returns the session ids.
 */
export const PENDING_SESSIONS_SCRIPT = defineScript(
  'pending-sessions',
  `
local wanted = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local out = {}
local offset = 0
while #out < wanted do
  local size = wanted - #out
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', offset, size)
  for i = 1, #batch do
    local expiresAt = redis.call('ZSCORE', KEYS[2], batch[i])
    if not (expiresAt and tonumber(expiresAt) > now) then out[#out + 1] = batch[i] end
  end
  if #batch < size then break end
  offset = offset + #batch
end
return out
`,
);

/** The turn-log members of the Redis driver. */
export type RedisTurnLogMembers = Required<
  Pick<ContextDriver, 'recordTurn' | 'readPending' | 'lease' | 'releaseLease' | 'pendingSessions'>
>;

type DriverTurn = Awaited<ReturnType<RedisTurnLogMembers['readPending']>>[number];
type RecordTurnResult = Awaited<ReturnType<RedisTurnLogMembers['recordTurn']>>;

/** What {@link createRedisTurnLog} works with (the driver's client, keys and ready gate). */
export interface RedisTurnLogOptions {
  /** The client to run the scripts on. */
  client: RedisClient;
  /** The key names of the repository's prefix. */
  keys: RedisKeyLayout;
  /** Resolves once the client is ready, or rejects with `STORAGE_UNAVAILABLE` in time. */
  whenReady: () => Promise<void>;
}

function turnMismatch(key: string, turnId: string, cause?: unknown): StorageError {
  return new StorageError(
    'SCHEMA_MISMATCH',
    `Redis key "${key}" does not hold a ctx turn under "${turnId}": another application (or a hand edit) wrote under this key prefix. Give ctx a keyPrefix of its own, or delete the key`,
    { cause },
  );
}

const isMessage = (value: unknown): value is Message =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Message).role === 'string' &&
  typeof (value as Message).content === 'string';

/** Parses a pending record `[sequence, recordedAt, userId, messages]` into a fresh turn. */
function decodeTurn(turnId: string, record: string, key: string): DriverTurn {
  let value: unknown;
  try {
    value = JSON.parse(record);
  } catch (error) {
    throw turnMismatch(key, turnId, error);
  }
  if (!Array.isArray(value)) throw turnMismatch(key, turnId);
  const [sequence, recordedAt, userId, messages] = value as unknown[];
  if (
    !Number.isSafeInteger(sequence) ||
    typeof recordedAt !== 'number' ||
    !Number.isFinite(recordedAt) ||
    !(userId === null || typeof userId === 'string') ||
    !Array.isArray(messages) ||
    !messages.every(isMessage)
  ) {
    throw turnMismatch(key, turnId);
  }
  return {
    turnId,
    userId,
    messages: messages.map(({ role, content }) => ({ role, content })),
    sequence: sequence as number,
    recordedAt,
  };
}

/**
 * The turn log on Redis: each member is one Lua script, so recording (with its duplicate check and
 * pending bound), leasing and reading are atomic across every client of the prefix. Times are the
 * repository's `now` (the requests'), never the server's, so every instance agrees with its own
 * clock about `recordedAt` and lease expiry.
 */
export function createRedisTurnLog(options: RedisTurnLogOptions): RedisTurnLogMembers {
  const { client, keys, whenReady } = options;
  const ready = async () => {
    if (client.status !== 'ready') await whenReady();
  };
  const leaseKeys = [keys.leases, keys.leaseHolders];

  return {
    async recordTurn({ sessionId, turn, now, maxPending }) {
      await ready();
      const reply = await runScript(
        client,
        RECORD_TURN_SCRIPT,
        [
          keys.turns(sessionId),
          keys.pendingTurns(sessionId),
          keys.pendingSessions,
          keys.turnSequence,
        ],
        [
          sessionId,
          turn.turnId,
          now,
          maxPending,
          JSON.stringify([turn.userId, turn.messages]).slice(1),
        ],
      );
      const [status, count] = asArray(reply, 'record turn') as [number, number];
      let result: RecordTurnResult;
      if (status === 0) result = { status: 'recorded', sequence: count };
      else if (status === 1) result = { status: 'duplicate', sequence: count };
      else if (status === 2) result = { status: 'full', pending: count };
      else throw turnMismatch(keys.turns(sessionId), turn.turnId);
      return result;
    },

    async readPending({ sessionId, limit }) {
      await ready();
      const key = keys.turns(sessionId);
      const reply = asArray(
        await runScript(
          client,
          READ_PENDING_SCRIPT,
          [key, keys.pendingTurns(sessionId)],
          [limit - 1],
        ),
        'read pending turns',
      ) as string[];
      const turns: DriverTurn[] = [];
      for (let index = 0; index < reply.length; index += 2) {
        turns.push(decodeTurn(reply[index] as string, reply[index + 1] as string, key));
      }
      return turns;
    },

    async lease({ sessionId, holder, ttlMs, now }) {
      await ready();
      const reply = await runScript(client, LEASE_SCRIPT, leaseKeys, [
        sessionId,
        holder,
        now,
        now + ttlMs,
      ]);
      return reply === 1;
    },

    async releaseLease({ sessionId, holder }) {
      await ready();
      await runScript(client, RELEASE_LEASE_SCRIPT, leaseKeys, [sessionId, holder]);
    },

    async pendingSessions({ recordedBefore, limit, now }) {
      await ready();
      const reply = await runScript(
        client,
        PENDING_SESSIONS_SCRIPT,
        [keys.pendingSessions, keys.leases],
        [recordedBefore, limit, now],
      );
      return asArray(reply, 'list sessions with pending turns') as string[];
    },
  };
}
