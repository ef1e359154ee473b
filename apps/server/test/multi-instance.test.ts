import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { afterAll, describe, expect, it } from 'vitest';
import type { SessionContextJson } from '../src/app.js';
import type { ErrorBody } from '../src/http-errors.js';
import { postTurn, randomId, type ServerProcess, spawnServer } from './helpers.js';

const POSTGRES_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const TURNS = 40;

const running: ServerProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  await Promise.all(running.map((server) => server.stop('SIGKILL')));
  for (const cleanup of cleanups) await cleanup();
});

/**
 * Two server processes on one store take {@link TURNS} concurrent turns of one session,
 * alternating between them. Every turn is recorded and folded once: each 200 answer carries a
 * stored version (one that holds its turn), the two instances share extractions through the turn
 * log's lease (the final version, one per extraction, is at most the number of turns), and both
 * read the same final snapshot.
 */
async function raceTwoInstances(storeUrl: string, extraEnv: Record<string, string> = {}) {
  const env = { CTX_STORE_URL: storeUrl, CTX_MODEL: 'extractive', CTX_PLANNING: '1', ...extraEnv };
  const instances = await Promise.all([spawnServer(env), spawnServer(env)]);
  running.push(...instances);
  try {
    return await race(instances);
  } catch (error) {
    // The servers' logs explain an unexpected status.
    const logs = instances.map((instance, index) => `--- instance ${index}:\n${instance.output()}`);
    throw new Error(`${(error as Error).message}\n${logs.join('\n')}`, { cause: error });
  }
}

async function race(instances: ServerProcess[]) {
  const sessionId = randomId('race');
  const responses = await Promise.all(
    Array.from({ length: TURNS }, (_, index) =>
      postTurn((instances[index % 2] as ServerProcess).url, sessionId, 'alice', [
        { role: 'user', content: `Turn ${index}: we decided to use queue number ${index}.` },
        { role: 'assistant', content: `Noted: queue ${index} is the choice for this turn.` },
      ]),
    ),
  );
  const accepted: SessionContextJson[] = [];
  const conflicts: ErrorBody['error'][] = [];
  let retried = 0;
  for (const response of responses) {
    if (response.status === 200) {
      const body = (await response.json()) as {
        context: SessionContextJson;
        updated: boolean;
        conflictRetries: number;
      };
      expect(body.updated).toBe(true);
      accepted.push(body.context);
      retried += body.conflictRetries;
    } else {
      const body = (await response.json()) as ErrorBody;
      expect(response.status, JSON.stringify(body)).toBe(409);
      conflicts.push(body.error);
    }
  }
  for (const conflict of conflicts) {
    expect(conflict).toMatchObject({ code: 'VERSION_CONFLICT', retryable: true });
    expect(conflict.message).toContain(sessionId);
  }
  const versions = accepted.map((context) => context.version);
  const last = Math.max(...versions);
  expect(accepted.length + conflicts.length).toBe(TURNS);
  expect(accepted.length).toBeGreaterThan(0);
  expect(last).toBeLessThanOrEqual(TURNS);
  for (const version of versions) expect(version).toBeGreaterThanOrEqual(1);

  for (const instance of instances) {
    const read = await fetch(`${instance.url}/v1/sessions/${sessionId}/context`);
    const { context } = (await read.json()) as { context: SessionContextJson };
    expect(context.version).toBe(last);
    expect(context.userId).toBe('alice');
  }
  await Promise.all(
    instances.map(async (instance) => expect((await instance.stop()).code).toBe(0)),
  );
  return { accepted: accepted.length, conflicts: conflicts.length, retried };
}

describe('two server processes on one store', () => {
  it('PostgreSQL: concurrent turns on one session lose no update', async () => {
    const schema = randomId('ctx_server').replace(/-/g, '_');
    cleanups.push(async () => {
      const dataSource = await new DataSource({ type: 'postgres', url: POSTGRES_URL }).initialize();
      try {
        await dataSource.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await dataSource.destroy();
      }
    });
    const result = await raceTwoInstances(`${POSTGRES_URL}?schema=${schema}`);
    console.info(`PostgreSQL race: ${JSON.stringify(result)}`);
    // Without conflict retries a lost race would answer 409; the lease keeps folds apart.
    const strict = await raceTwoInstances(`${POSTGRES_URL}?schema=${schema}`, {
      CTX_MAX_CONFLICT_RETRIES: '0',
    });
    console.info(`PostgreSQL race without retries: ${JSON.stringify(strict)}`);
  }, 60_000);

  it('Redis: concurrent turns on one session lose no update', async () => {
    const prefix = randomId('ctx-server');
    cleanups.push(async () => {
      const client = new Redis(REDIS_URL);
      try {
        const keys = await client.keys(`${prefix}*`);
        if (keys.length > 0) await client.del(...keys);
      } finally {
        client.disconnect();
      }
    });
    const result = await raceTwoInstances(`${REDIS_URL}?prefix=${prefix}`);
    console.info(`Redis race: ${JSON.stringify(result)}`);
  }, 60_000);
});
