import { randomBytes, randomUUID } from 'node:crypto';
import type { RawSnapshot } from '@ctx/conformance';
import type { SessionContext } from '@ctx/core';
import { type Cluster, Redis } from 'ioredis';
import type { RedisKeyLayout } from '../src/index.js';

/** The Redis server every test uses: `CTX_REDIS_URL`, else the local default. */
export const REDIS_URL = process.env.CTX_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix no other run uses. */
export function randomPrefix(label = 'test'): string {
  return `ctx-${label}-${randomBytes(6).toString('hex')}`;
}

export function randomId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

/**
 * A plain client for out-of-band reads and cleanup. It fails fast (no offline queue) so a suite
 * whose server is unreachable fails instead of hanging.
 */
export function createRawClient(): Redis {
  const client = new Redis(REDIS_URL, {
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 3_000,
    retryStrategy: (attempt) => (attempt > 3 ? null : 200),
  });
  client.on('error', () => undefined);
  return client;
}

/**
 * The conformance suite's out-of-band read: the stored document, or `null` when the id has none
 * (never written, or a tombstone: a bookkeeping record without a document). A stored document
 * must agree with its bookkeeping record, whose version is what the scripts compare.
 */
export async function readRawSnapshot(
  client: Redis | Cluster,
  keys: RedisKeyLayout,
  sessionId: string,
): Promise<RawSnapshot | null> {
  const json = await client.get(keys.session(sessionId));
  if (json === null) return null;
  const stored = JSON.parse(json) as RawSnapshot;
  const record = JSON.parse((await client.hget(keys.meta, sessionId)) ?? 'null') as unknown;
  if (!Array.isArray(record) || record[0] !== stored.version || record[1] === false) {
    throw new Error(
      `session ${sessionId}: bookkeeping record ${JSON.stringify(record)} does not match the stored version ${stored.version}`,
    );
  }
  return stored;
}

/** Every key matching a `SCAN` pattern, sorted (a full cursor walk, not one batch). */
export async function scanKeys(client: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    found.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return found.sort();
}

/** Every key of `keyPrefix` (its hash-tagged namespace). */
export async function keysOf(client: Redis, keyPrefix: string): Promise<string[]> {
  return scanKeys(client, `{${keyPrefix}}:*`);
}

/** Deletes every key of `keyPrefix`; returns how many there were. */
export async function deletePrefix(client: Redis, keyPrefix: string): Promise<number> {
  const keys = await keysOf(client, keyPrefix);
  for (let index = 0; index < keys.length; index += 500) {
    await client.del(...keys.slice(index, index + 500));
  }
  return keys.length;
}

/** A valid first-version snapshot with random ids; override any field. */
export function makeSnapshot(overrides: Partial<SessionContext> = {}): SessionContext {
  const time = new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 678));
  return {
    sessionId: randomId('session'),
    userId: randomId('user'),
    summary: 'Designing a REST API for a todo app.',
    goal: 'Ship the API',
    plan: ['Define endpoints', 'Pick methods'],
    progress: ['Define endpoints'],
    createdAt: time,
    updatedAt: time,
    version: 1,
    fields: null,
    ...overrides,
  };
}

/** The next version of `snapshot`, `stepMs` later, with a new summary. */
export function nextVersion(
  snapshot: SessionContext,
  summary = `Version ${snapshot.version + 1}.`,
  stepMs = 1,
): SessionContext {
  return {
    ...snapshot,
    summary,
    updatedAt: new Date(snapshot.updatedAt.getTime() + stepMs),
    version: snapshot.version + 1,
  };
}

/** The rejection of `promise`; throws if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
