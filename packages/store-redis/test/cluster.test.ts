import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describeContextRepository } from '@ctx/conformance';
import { Cluster, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisKeyLayout, createRedisRepository } from '../src/index.js';
import {
  makeSnapshot,
  nextVersion,
  randomId,
  randomPrefix,
  readRawSnapshot,
  sleep,
} from './helpers.js';

// A real three-node Redis Cluster on loopback ports of this machine, started for this file and
// stopped at its end: it proves that every script runs on a cluster (one slot per key prefix).

const run = promisify(execFile);
const NODE_COUNT = 3;

interface LocalCluster {
  ports: number[];
  stop(): Promise<void>;
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Ports whose cluster bus port (port + 10000) is free too. */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if (ports.includes(port)) continue;
    if ((await isFree(port)) && (await isFree(port + 10_000))) ports.push(port);
  }
  return ports;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function startCluster(): Promise<LocalCluster> {
  const folder = mkdtempSync(join(tmpdir(), 'ctx-redis-cluster-'));
  const ports = await freePorts(NODE_COUNT);
  const children: ChildProcess[] = ports.map((port) => {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(folder, `nodes-${port}.conf`),
        '--dir',
        folder,
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: 'ignore' },
    );
    child.on('error', () => undefined);
    return child;
  });
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
    rmSync(folder, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      await waitFor(
        async () => (await run('redis-cli', ['-p', String(port), 'ping'])).stdout.includes('PONG'),
        `redis-server on port ${port}`,
      );
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    for (const port of ports) {
      await waitFor(
        async () =>
          (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout.includes(
            'cluster_state:ok',
          ),
        `cluster state ok on port ${port}`,
      );
    }
    return { ports, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function connect(ports: number[]): Cluster {
  const cluster = new Cluster(
    ports.map((port) => ({ host: '127.0.0.1', port })),
    { enableOfflineQueue: true, redisOptions: { maxRetriesPerRequest: 1 } },
  );
  cluster.on('error', () => undefined);
  return cluster;
}

let started: Promise<{ cluster: LocalCluster; first: Cluster; second: Cluster }> | undefined;

/** Starts the cluster once, on first use, with two independent clients. */
function local() {
  started ??= startCluster().then((cluster) => ({
    cluster,
    first: connect(cluster.ports),
    second: connect(cluster.ports),
  }));
  return started;
}

async function stopLocal() {
  if (!started) return;
  const { cluster, first, second } = await started;
  first.disconnect();
  second.disconnect();
  await cluster.stop();
}

const keyPrefix = randomPrefix('cluster');
const keys = createRedisKeyLayout(keyPrefix);

describeContextRepository({
  name: 'redis cluster (3 nodes)',
  capabilities: { ttl: true, history: true, turnLog: true },
  createRepository: async (options) =>
    createRedisRepository({ client: (await local()).first, keyPrefix, ...options }),
  createSecondConnection: async (options) =>
    createRedisRepository({ client: (await local()).second, keyPrefix, ...options }),
  readRaw: async (sessionId) => readRawSnapshot((await local()).first, keys, sessionId),
});

afterAll(stopLocal);

describe('redis cluster layout', () => {
  let first: Cluster;
  beforeAll(async () => {
    ({ first } = await local());
  });

  it('keeps every key of a prefix on the one node that owns its slot', async () => {
    const prefix = randomPrefix('slot');
    const repository = createRedisRepository({
      client: first,
      keyPrefix: prefix,
      ttlMs: 60_000,
      historyLimit: 2,
    });
    const [alice, bob] = [randomId('alice'), randomId('bob')];
    const snapshot = await repository.save(makeSnapshot({ userId: alice }), {
      expectedVersion: null,
    });
    await repository.save({ ...nextVersion(snapshot), userId: bob }, { expectedVersion: 1 });
    const other = await repository.save(makeSnapshot({ userId: alice }), {
      expectedVersion: null,
    });

    const nodes = first.nodes('master');
    const counts = async () =>
      (
        await Promise.all(
          nodes.map(async (node: Redis) => {
            const [, found] = await node.scan('0', 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
            return found.length;
          }),
        )
      ).filter((count) => count > 0);
    // Two sessions (document + history each), two user indexes, all, meta, expiry.
    expect(await counts()).toEqual([9]);
    // A delete leaves a tombstone on the same node: one session's document, history and user
    // index go, the tombstone set comes.
    expect(await repository.delete(other.sessionId, { userId: alice, expectedVersion: 1 })).toBe(
      true,
    );
    expect(await counts()).toEqual([7]);
    expect(
      (
        await repository.save(makeSnapshot({ sessionId: other.sessionId }), {
          expectedVersion: null,
        })
      ).version,
    ).toBe(2);
    const slot = await first.call('CLUSTER', 'KEYSLOT', `{${prefix}}`);
    for (const key of [
      repository.keys.session(snapshot.sessionId),
      repository.keys.user(bob),
      repository.keys.all,
      repository.keys.meta,
      repository.keys.expiry,
      repository.keys.tombstones,
    ]) {
      expect(await first.call('CLUSTER', 'KEYSLOT', key)).toBe(slot);
    }
    expect((await repository.list({ userId: bob })).items.map((item) => item.version)).toEqual([2]);
    expect(await repository.list({ userId: alice })).toMatchObject({ nextCursor: null });
    await repository.close();
  });

  it('keeps the turn log of a prefix in the same slot', async () => {
    const prefix = randomPrefix('turns');
    const repository = createRedisRepository({ client: first, keyPrefix: prefix });
    const sessionId = randomId('session');
    const turns = [randomId('turn'), randomId('turn')];
    for (const turnId of turns) {
      await repository.recordTurn(sessionId, {
        turnId,
        userId: null,
        messages: [{ role: 'user', content: 'Hello' }],
      });
    }
    expect(await repository.acquireLease(sessionId, { holder: 'folder', ttlMs: 60_000 })).toBe(
      true,
    );
    await repository.save(makeSnapshot({ sessionId, userId: null }), {
      expectedVersion: null,
      foldedTurnIds: [turns[0] as string],
    });
    expect(await repository.sessionsWithPendingTurns()).toEqual([]);
    await repository.releaseLease(sessionId, 'folder');
    expect(await repository.sessionsWithPendingTurns()).toEqual([sessionId]);
    expect((await repository.pendingTurns(sessionId)).map((turn) => turn.turnId)).toEqual([
      turns[1],
    ]);
    expect(await repository.purgeExpired()).toBe(0);

    const slot = await first.call('CLUSTER', 'KEYSLOT', `{${prefix}}`);
    const keys = repository.keys;
    for (const key of [
      keys.turns(sessionId),
      keys.pendingTurns(sessionId),
      keys.foldedTurns(sessionId),
      keys.pendingSessions,
      keys.foldedSessions,
      keys.leases,
      keys.leaseHolders,
      keys.turnSequence,
    ]) {
      expect(await first.call('CLUSTER', 'KEYSLOT', key)).toBe(slot);
    }
    await repository.acquireLease(sessionId, { holder: 'folder', ttlMs: 60_000 });
    // Document, all, meta + the turn log (hash, pending, folded, two indexes, lease, holders,
    // counter), all on one node; the delete then drops the turn log and the lease.
    const counts = async () =>
      (
        await Promise.all(
          first.nodes('master').map(async (node: Redis) => {
            const [, found] = await node.scan('0', 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
            return found.length;
          }),
        )
      ).filter((count) => count > 0);
    expect(await counts()).toEqual([11]);
    expect(await repository.delete(sessionId)).toBe(true);
    expect(await counts()).toEqual([3]);
    await repository.close();
  });

  it('spreads different prefixes over the cluster', async () => {
    const slots = new Set<number>();
    for (let index = 0; index < 20; index += 1) {
      slots.add((await first.call('CLUSTER', 'KEYSLOT', `{${randomPrefix('spread')}}`)) as number);
    }
    expect(slots.size).toBeGreaterThan(1);
  });
});
