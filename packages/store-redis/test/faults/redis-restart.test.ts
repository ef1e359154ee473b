import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ContextError, isRetryableError } from '@ctx/core';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createRedisRepository,
  type RedisRepository,
  redisClientOptions,
} from '../../src/index.js';
import {
  createRawClient,
  deletePrefix,
  makeSnapshot,
  nextVersion,
  REDIS_URL,
  randomPrefix,
  rejectionOf,
  sleep,
} from '../helpers.js';

// Stops and restarts the local Redis server. Run only through `pnpm test:faults` with
// CTX_FAULT_TESTS=1 (the root test task does so after every other suite): a restart in the middle
// of another suite would break it.

const ENABLED = process.env.CTX_FAULT_TESTS === '1';
const SKIP_REASON =
  'CTX_FAULT_TESTS is not 1: this test stops and restarts the local Redis server, so it runs only in the fault step (CTX_FAULT_TESTS=1 pnpm test:faults)';

const run = promisify(execFile);
const PORT = '6379';
const START_ARGS = [
  '--daemonize',
  'yes',
  '--bind',
  '127.0.0.1',
  '-::1',
  '--port',
  PORT,
  '--save',
  '',
  '--appendonly',
  'no',
  '--dir',
  '/var/lib/redis',
  '--logfile',
  '/var/log/redis/ci.log',
];

const TIMEOUT_MS = 1_000;
/** connectTimeoutMs + 2 × commandTimeoutMs, plus scheduling slack. */
const BOUND_MS = TIMEOUT_MS * 3 + 1_000;

async function ping(): Promise<boolean> {
  try {
    const { stdout } = await run('redis-cli', ['-p', PORT, 'ping'], { timeout: 2_000 });
    return stdout.trim() === 'PONG';
  } catch {
    return false;
  }
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function stopServer(): Promise<void> {
  await run('redis-cli', ['-p', PORT, 'shutdown', 'nosave']).catch(() => undefined);
  await waitUntil(async () => !(await ping()), 'the Redis server to stop');
}

async function startServer(): Promise<void> {
  if (await ping()) return;
  await run('redis-server', START_ARGS);
  await waitUntil(ping, 'the Redis server to answer PING after a restart');
}

/** Stops the server, runs `during`, and always starts it again before returning or throwing. */
async function withServerStopped(during: () => Promise<void>): Promise<void> {
  try {
    await stopServer();
    await during();
  } finally {
    await startServer();
  }
}

async function expectUnavailableWithinBound(label: string, call: () => Promise<unknown>) {
  const started = Date.now();
  const error = await rejectionOf(call());
  const elapsed = Date.now() - started;
  expect(ContextError.hasCode(error, 'STORAGE_UNAVAILABLE'), `${label}: ${String(error)}`).toBe(
    true,
  );
  expect(isRetryableError(error), `${label} is retryable`).toBe(true);
  expect(elapsed, `${label} failed after ${elapsed} ms`).toBeLessThan(BOUND_MS);
}

const prefixes: string[] = [];
const repositories: RedisRepository[] = [];

function open(options: { client?: Redis; connectTimeoutMs?: number } = {}): RedisRepository {
  const keyPrefix = randomPrefix('faults');
  prefixes.push(keyPrefix);
  const common = {
    keyPrefix,
    ttlMs: 60_000,
    historyLimit: 3,
    connectTimeoutMs: options.connectTimeoutMs ?? TIMEOUT_MS,
  };
  const repository = options.client
    ? createRedisRepository({ client: options.client, ...common })
    : createRedisRepository({ url: REDIS_URL, commandTimeoutMs: TIMEOUT_MS, ...common });
  repositories.push(repository);
  return repository;
}

afterAll(async () => {
  if (!ENABLED) return;
  await startServer();
  for (const repository of repositories) await repository.close();
  const raw = createRawClient();
  try {
    for (const keyPrefix of prefixes) await deletePrefix(raw, keyPrefix);
  } finally {
    raw.disconnect();
  }
});

describe('Redis server restart', () => {
  it('fails typed within the bound during the outage, then the same repository works again', async (context) => {
    context.skip(!ENABLED, SKIP_REASON);
    expect(
      new URL(REDIS_URL).port || '6379',
      'the fault test restarts the local server on 6379',
    ).toBe(PORT);
    expect(await ping(), 'the local Redis server runs before the test').toBe(true);

    const injected = new Redis(
      REDIS_URL,
      redisClientOptions({ commandTimeoutMs: TIMEOUT_MS, connectTimeoutMs: TIMEOUT_MS }),
    );
    injected.on('error', () => undefined);
    try {
      const fromUrl = open();
      const fromClient = open({ client: injected });
      for (const repository of [fromUrl, fromClient]) {
        const stored = await repository.save(makeSnapshot(), { expectedVersion: null });
        expect((await repository.get(stored.sessionId))?.version).toBe(1);
      }
      const sample = makeSnapshot();

      await withServerStopped(async () => {
        for (const repository of [fromUrl, fromClient]) {
          await expectUnavailableWithinBound('get', () => repository.get(sample.sessionId));
          await expectUnavailableWithinBound('save', () =>
            repository.save(sample, { expectedVersion: null }),
          );
          await expectUnavailableWithinBound('list', () => repository.list());
          await expectUnavailableWithinBound('delete', () => repository.delete(sample.sessionId));
          await expectUnavailableWithinBound('history', () =>
            repository.history!(sample.sessionId),
          );
          await expectUnavailableWithinBound('purgeExpired', () => repository.purgeExpired!());
          // Many calls at once neither pile up nor wait longer than one.
          await expectUnavailableWithinBound('50 concurrent gets', async () => {
            const results = await Promise.allSettled(
              Array.from({ length: 50 }, () => repository.get(sample.sessionId)),
            );
            const errors = results.map((result) =>
              result.status === 'rejected' ? result.reason : new Error('a get succeeded'),
            );
            for (const error of errors) {
              expect(ContextError.hasCode(error, 'STORAGE_UNAVAILABLE')).toBe(true);
            }
            throw errors[0];
          });
        }
      });

      // The server came back empty (no persistence) and without the scripts: the same
      // repositories reconnect by themselves and load the scripts again.
      for (const repository of [fromUrl, fromClient]) {
        expect(await repository.get(sample.sessionId)).toBeNull();
        const first = await repository.save(makeSnapshot({ sessionId: sample.sessionId }), {
          expectedVersion: null,
        });
        const second = await repository.save(nextVersion(first), { expectedVersion: 1 });
        expect((await repository.get(sample.sessionId))?.version).toBe(2);
        expect((await repository.list({ userId: second.userId as string })).items).toHaveLength(1);
        expect((await repository.history!(sample.sessionId)).map((item) => item.version)).toEqual([
          2, 1,
        ]);
        expect(await repository.purgeExpired!()).toBe(0);
        expect(await repository.delete(sample.sessionId)).toBe(true);
      }
      expect(injected.status).toBe('ready');
    } finally {
      injected.disconnect();
    }
  });

  it('a call made during a short outage succeeds when the server is back within connectTimeoutMs', async (context) => {
    context.skip(!ENABLED, SKIP_REASON);
    const repository = open({ connectTimeoutMs: 10_000 });
    const stored = await repository.save(makeSnapshot(), { expectedVersion: null });
    let pending: Promise<{ value?: unknown; error?: unknown }> | undefined;
    await withServerStopped(async () => {
      pending = repository.get(stored.sessionId).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      await sleep(300);
    });
    // The restarted server is empty: the session is gone, but the call itself did not fail.
    expect(await pending).toEqual({ value: null });
  });
});
