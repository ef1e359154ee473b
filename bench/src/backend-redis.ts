import { createHash } from 'node:crypto';
import type { SessionContext, StoredFields } from '@ctx/core';
import { createRedisRepository } from '@ctx/store-redis';
import { Redis } from 'ioredis';
import { type Backend, type RawDriver, REDIS_URL, runId } from './backends.js';

interface RedisDocument {
  sessionId: string;
  userId: string | null;
  summary: string;
  goal: string | null;
  plan: string[] | null;
  progress: string[] | null;
  fields: StoredFields | null;
  createdAt: number;
  updatedAt: number;
  version: number;
}

// The leanest hand-written compare-and-set: the version lives in a hash next to the document.
const RAW_SAVE_LUA = `
local current = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if current ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return 1
`;
const RAW_SAVE_SHA = createHash('sha1').update(RAW_SAVE_LUA).digest('hex');

/**
 * Redis: the adapter on its own client (from a URL) under a random key prefix; the raw side is a
 * second ioredis client. Every key of the prefix is deleted in `cleanup`.
 */
export async function createRedisBackend(): Promise<Backend> {
  const keyPrefix = `ctx-bench-${runId()}`;
  const repository = createRedisRepository({ url: REDIS_URL, keyPrefix });
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    await client.script('LOAD', RAW_SAVE_LUA);
  } catch (error) {
    client.disconnect();
    await repository.close();
    throw error;
  }
  const { keys } = repository;
  const versions = `{${keyPrefix}}:raw-versions`;
  const raw: RawDriver = {
    getDescription:
      '`GET` on a second ioredis client; `JSON.parse` of the document (custom fields included) and two `new Date(ms)`',
    saveDescription:
      '`EVALSHA` of a 5-line Lua compare-and-set (version in a hash: `HGET`, compare, `SET` document, `HSET` version); `JSON.stringify` of the document (custom fields included)',
    async prepare(snapshot) {
      await client.hset(versions, snapshot.sessionId, snapshot.version);
    },
    async get(sessionId) {
      const json = await client.get(keys.session(sessionId));
      if (json === null) return null;
      const document = JSON.parse(json) as RedisDocument;
      return {
        sessionId: document.sessionId,
        userId: document.userId,
        summary: document.summary,
        goal: document.goal,
        plan: document.plan,
        progress: document.progress,
        createdAt: new Date(document.createdAt),
        updatedAt: new Date(document.updatedAt),
        version: document.version,
        fields: document.fields ?? null,
      };
    },
    async save(snapshot: SessionContext, expectedVersion: number) {
      const document: RedisDocument = {
        sessionId: snapshot.sessionId,
        userId: snapshot.userId,
        summary: snapshot.summary,
        goal: snapshot.goal,
        plan: snapshot.plan,
        progress: snapshot.progress,
        fields: snapshot.fields ?? null,
        createdAt: snapshot.createdAt.getTime(),
        updatedAt: snapshot.updatedAt.getTime(),
        version: snapshot.version,
      };
      const written = await client.evalsha(
        RAW_SAVE_SHA,
        2,
        keys.session(snapshot.sessionId),
        versions,
        snapshot.sessionId,
        expectedVersion,
        JSON.stringify(document),
        snapshot.version,
      );
      if (written !== 1) {
        throw new Error(`raw save: session ${snapshot.sessionId} is not at ${expectedVersion}`);
      }
    },
    insertTurnDescription:
      "a pipeline of `HSET` (turn log hash: turn id → `[sequence, recordedAt, userId, messages]` JSON, the adapter's layout) and `ZADD` (pending ids by sequence) in one round trip; the sequence from a local counter",
    async insertTurn(sessionId, turn, recordedAt, sequence) {
      const record = JSON.stringify([sequence, recordedAt, turn.userId, turn.messages]);
      const replies = await client
        .pipeline()
        .hset(keys.turns(sessionId), turn.turnId, record)
        .zadd(keys.pendingTurns(sessionId), sequence, turn.turnId)
        .exec();
      const failed = replies?.find(([error]) => error !== null);
      if (failed) throw failed[0];
    },
  };
  return {
    name: 'redis',
    label: 'Redis',
    repository,
    raw,
    async cleanup() {
      try {
        let cursor = '0';
        do {
          const [next, found] = await client.scan(
            cursor,
            'MATCH',
            `{${keyPrefix}}:*`,
            'COUNT',
            500,
          );
          cursor = next;
          if (found.length > 0) await client.del(...found);
        } while (cursor !== '0');
      } finally {
        client.disconnect();
        await repository.close();
      }
    },
  };
}
