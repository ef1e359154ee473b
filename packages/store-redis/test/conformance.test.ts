import { describeContextRepository } from '@ctx/conformance';
import { Redis } from 'ioredis';
import { beforeAll, expect } from 'vitest';
import { createRedisKeyLayout, createRedisRepository } from '../src/index.js';
import {
  createRawClient,
  deletePrefix,
  REDIS_URL,
  randomPrefix,
  readRawSnapshot,
} from './helpers.js';

// One prefix per run, so runs sharing the server never see each other's sessions.
const keyPrefix = randomPrefix('conformance');
const keys = createRedisKeyLayout(keyPrefix);
const raw = createRawClient();
// The second connection is an independent client, injected, so the race tests go through two
// sockets; it is closed in teardown, never by the repositories built on it.
const second = new Redis(REDIS_URL, { enableOfflineQueue: true, maxRetriesPerRequest: 1 });
second.on('error', () => undefined);

beforeAll(async () => {
  // An unreachable server fails the run at once (never skips it).
  expect(await raw.ping()).toBe('PONG');
});

describeContextRepository({
  name: 'redis',
  capabilities: { ttl: true, history: true, turnLog: true, fields: true },
  createRepository: (options) => createRedisRepository({ url: REDIS_URL, keyPrefix, ...options }),
  createSecondConnection: (options) =>
    createRedisRepository({ client: second, keyPrefix, ...options }),
  readRaw: (sessionId) => readRawSnapshot(raw, keys, sessionId),
  async teardown() {
    await deletePrefix(raw, keyPrefix);
    raw.disconnect();
    second.disconnect();
  },
});
