import {
  ContextError,
  LIMITS,
  type SessionContext,
  type StorageError,
  type TurnInput,
  VersionConflictError,
} from '@ctx/core';
import { compareForList } from '@ctx/core/adapter';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createRedisKeyLayout,
  createRedisRepository,
  encodeIndexMember,
  type RedisRepository,
  type RedisRepositoryOptions,
} from '../src/index.js';
import {
  createRawClient,
  deletePrefix,
  keysOf,
  makeSnapshot,
  nextVersion,
  REDIS_URL,
  randomId,
  randomPrefix,
  rejectionOf,
  scanKeys,
  sleep,
} from './helpers.js';

const raw = createRawClient();
const prefixes: string[] = [];
const opened: RedisRepository[] = [];

function open(options: Partial<RedisRepositoryOptions> = {}): RedisRepository {
  const keyPrefix = options.keyPrefix ?? randomPrefix();
  prefixes.push(keyPrefix);
  const repository = createRedisRepository({
    url: REDIS_URL,
    ...options,
    keyPrefix,
  } as RedisRepositoryOptions);
  opened.push(repository);
  return repository;
}

function ids(items: SessionContext[]): string[] {
  return items.map((item) => item.sessionId);
}

/**
 * The version a session's tombstone keeps, checking its shape: `[version, false, false, madeAt]`
 * in the meta hash, the id in the tombstone set at `madeAt`, and no document, history or index
 * entry left. `null` when the id has no tombstone.
 */
async function tombstoneOf(repository: RedisRepository, sessionId: string): Promise<number | null> {
  const keys = repository.keys;
  const record = await raw.hget(keys.meta, sessionId);
  if (record === null) return null;
  const [version, member, owner, madeAt] = JSON.parse(record) as unknown[];
  if (member !== false || owner !== false) return null;
  expect(Number(await raw.zscore(keys.tombstones, sessionId))).toBe(madeAt);
  expect(await raw.exists(keys.session(sessionId), keys.history(sessionId))).toBe(0);
  expect(await raw.zscore(keys.expiry, sessionId)).toBeNull();
  return version as number;
}

beforeAll(async () => {
  // Fails (never skips) the suite when the server is unreachable.
  expect(await raw.ping()).toBe('PONG');
});

afterEach(async () => {
  for (const repository of opened.splice(0)) await repository.close();
});

afterAll(async () => {
  for (const keyPrefix of prefixes) await deletePrefix(raw, keyPrefix);
  raw.disconnect();
});

describe('key layout', () => {
  it('stores the JSON document, the indexes and the bookkeeping under documented keys', async () => {
    const repository = open({ ttlMs: 60_000, historyLimit: 2 });
    const keys = repository.keys;
    const snapshot = makeSnapshot({ updatedAt: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 679)) });
    await repository.save(snapshot, { expectedVersion: null });
    const member = encodeIndexMember(snapshot.updatedAt.getTime(), snapshot.sessionId);

    expect(keys.session(snapshot.sessionId)).toBe(`{${keys.keyPrefix}}:s:${snapshot.sessionId}`);
    expect(await keysOf(raw, keys.keyPrefix)).toEqual(
      [
        keys.session(snapshot.sessionId),
        keys.history(snapshot.sessionId),
        keys.user(snapshot.userId as string),
        keys.all,
        keys.meta,
        keys.expiry,
      ].sort(),
    );
    expect(JSON.parse((await raw.get(keys.session(snapshot.sessionId))) as string)).toEqual({
      sessionId: snapshot.sessionId,
      userId: snapshot.userId,
      summary: snapshot.summary,
      goal: snapshot.goal,
      plan: snapshot.plan,
      progress: snapshot.progress,
      fields: null,
      createdAt: snapshot.createdAt.getTime(),
      updatedAt: snapshot.updatedAt.getTime(),
      version: 1,
    });
    expect(member).toBe(`10001735787045679:${snapshot.sessionId}`);
    expect(await raw.zrange(keys.all, '0', '-1')).toEqual([member]);
    expect(await raw.zrange(keys.user(snapshot.userId as string), '0', '-1')).toEqual([member]);
    expect(JSON.parse((await raw.hget(keys.meta, snapshot.sessionId)) as string)).toEqual([
      1,
      member,
      snapshot.userId,
    ]);
    expect(await raw.llen(keys.history(snapshot.sessionId))).toBe(1);
    const ttl = await raw.pttl(keys.session(snapshot.sessionId));
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await raw.pttl(keys.history(snapshot.sessionId))).toBeGreaterThan(50_000);
    const expiresAt = Number(await raw.zscore(keys.expiry, snapshot.sessionId));
    expect(Math.abs(expiresAt - (Date.now() + ttl))).toBeLessThan(5_000);
  });

  it('without a TTL nothing expires and no expiry schedule is kept', async () => {
    const repository = open();
    const snapshot = makeSnapshot({ userId: null });
    await repository.save(snapshot, { expectedVersion: null });
    expect(await raw.pttl(repository.keys.session(snapshot.sessionId))).toBe(-1);
    expect(await raw.exists(repository.keys.expiry)).toBe(0);
    expect(await raw.exists(repository.keys.history(snapshot.sessionId))).toBe(0);
    expect(repository.capabilities).toEqual({
      ttl: false,
      history: false,
      turnLog: true,
      fields: true,
    });
    // purgeExpired also forgets old tombstones, which deletes leave without a TTL too.
    expect(await repository.purgeExpired()).toBe(0);
    expect(repository.history).toBeUndefined();
  });

  it('rejects key prefixes that would break the hash tag or SCAN patterns', () => {
    for (const keyPrefix of ['', 'a{b', 'a}b', 'a*', 'a b', 'x'.repeat(65), 'a\nb']) {
      expect(() => createRedisKeyLayout(keyPrefix)).toThrow(/keyPrefix/);
    }
  });
});

describe('list index', () => {
  it('orders by updatedAt then sessionId, including times before 1970 and far in the future', async () => {
    const repository = open();
    const userId = randomId('user');
    const times = [
      LIMITS.minTimestamp,
      -1_000_000,
      -1,
      0,
      1,
      1_000_000,
      1_735_787_045_678,
      LIMITS.maxTimestamp,
    ];
    const snapshots = times.flatMap((time) =>
      ['a', 'b'].map((suffix) =>
        makeSnapshot({
          sessionId: `${randomId('s')}-${suffix}`,
          userId,
          createdAt: new Date(time),
          updatedAt: new Date(time),
        }),
      ),
    );
    for (const snapshot of snapshots) await repository.save(snapshot, { expectedVersion: null });
    const expected = ids([...snapshots].sort(compareForList));
    expect(ids((await repository.list({ userId, limit: 100 })).items)).toEqual(expected);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await repository.list({ userId, limit: 3, cursor });
      seen.push(...ids(page.items));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(seen).toEqual(expected);
  });

  it('moves a session between user indexes when its owner changes', async () => {
    const repository = open();
    const [alice, bob] = [randomId('alice'), randomId('bob')];
    const first = await repository.save(makeSnapshot({ userId: alice }), { expectedVersion: null });
    const second = await repository.save(
      { ...nextVersion(first), userId: bob },
      { expectedVersion: 1 },
    );
    expect(ids((await repository.list({ userId: alice })).items)).toEqual([]);
    expect(ids((await repository.list({ userId: bob })).items)).toEqual([second.sessionId]);
    const third = await repository.save(
      { ...nextVersion(second), userId: null },
      { expectedVersion: 2 },
    );
    expect((await repository.list({ userId: bob })).items).toEqual([]);
    const all = await repository.list();
    expect(ids(all.items)).toEqual([third.sessionId]);
    expect(await raw.zcard(repository.keys.all)).toBe(1);
    expect(await repository.delete(third.sessionId)).toBe(true);
    const keys = repository.keys;
    expect(await keysOf(raw, keys.keyPrefix)).toEqual([keys.meta, keys.tombstones].sort());
    expect(await tombstoneOf(repository, third.sessionId)).toBe(3);
  });

  it('delete removes the document, its history and its index entries, leaving only a tombstone', async () => {
    const repository = open({ historyLimit: 3, ttlMs: 60_000 });
    const first = await repository.save(makeSnapshot(), { expectedVersion: null });
    await repository.save(nextVersion(first), { expectedVersion: 1 });
    const before = Date.now();
    expect(await repository.delete(first.sessionId)).toBe(true);
    const keys = repository.keys;
    expect(await keysOf(raw, keys.keyPrefix)).toEqual([keys.meta, keys.tombstones].sort());
    const [version, member, owner, madeAt] = JSON.parse(
      (await raw.hget(keys.meta, first.sessionId)) as string,
    );
    expect([version, member, owner]).toEqual([2, false, false]);
    expect(madeAt).toBeGreaterThanOrEqual(before);
    expect(Number(await raw.zscore(keys.tombstones, first.sessionId))).toBe(madeAt);
  });

  it('skips and removes entries a hand edit left behind, without losing live sessions', async () => {
    const repository = open();
    const userId = randomId('user');
    const live = await repository.save(makeSnapshot({ userId }), { expectedVersion: null });
    const index = repository.keys.user(userId);
    // An entry for a session that does not exist, and a stale position of the live one.
    await raw.zadd(index, 0, encodeIndexMember(Date.UTC(2030, 0, 1), 'ghost'));
    await raw.zadd(index, 0, encodeIndexMember(Date.UTC(2029, 0, 1), live.sessionId));
    const page = await repository.list({ userId });
    expect(ids(page.items)).toEqual([live.sessionId]);
    expect(await raw.zrange(index, '0', '-1')).toEqual([
      encodeIndexMember(live.updatedAt.getTime(), live.sessionId),
    ]);
  });
});

describe('ttl', () => {
  it('list cleans the index entries of expired sessions as it meets them', async () => {
    const repository = open({ ttlMs: 200, historyLimit: 2 });
    const userId = randomId('user');
    const expired = [makeSnapshot({ userId }), makeSnapshot({ userId }), makeSnapshot({ userId })];
    for (const snapshot of expired) await repository.save(snapshot, { expectedVersion: null });
    await sleep(400);
    const survivor = await repository.save(makeSnapshot({ userId }), { expectedVersion: null });

    expect(ids((await repository.list({ userId })).items)).toEqual([survivor.sessionId]);
    expect(await raw.zcard(repository.keys.user(userId))).toBe(1);
    expect(await raw.zcard(repository.keys.all)).toBe(1);
    // The bookkeeping of the expired sessions stays (their versions are tombstones in all but
    // name) until purgeExpired makes them tombstones.
    expect((await raw.hkeys(repository.keys.meta)).sort()).toEqual(
      ids([...expired, survivor]).sort(),
    );
    expect(await repository.purgeExpired()).toBe(3);
    for (const snapshot of expired) {
      expect(await tombstoneOf(repository, snapshot.sessionId)).toBe(1);
    }
    expect(await repository.purgeExpired()).toBe(0);
  });

  it('purgeExpired counts and removes every leftover of expired sessions', async () => {
    const repository = open({ ttlMs: 200, historyLimit: 2 });
    const expired = Array.from({ length: 5 }, (_, index) =>
      makeSnapshot({ userId: index % 2 === 0 ? null : randomId('user') }),
    );
    for (const snapshot of expired) await repository.save(snapshot, { expectedVersion: null });
    await sleep(400);
    const live = await repository.save(makeSnapshot(), { expectedVersion: null });

    expect(await repository.purgeExpired?.()).toBe(5);
    expect(await repository.purgeExpired?.()).toBe(0);
    const keys = repository.keys;
    expect(await keysOf(raw, keys.keyPrefix)).toEqual(
      [
        keys.session(live.sessionId),
        keys.history(live.sessionId),
        keys.user(live.userId as string),
        keys.all,
        keys.meta,
        keys.expiry,
        keys.tombstones,
      ].sort(),
    );
    // What is left of each expired session is its tombstone, made at its expiry time.
    for (const snapshot of expired) {
      expect(await tombstoneOf(repository, snapshot.sessionId)).toBe(1);
    }
    expect(await raw.zcard(keys.all)).toBe(1);
    expect(await raw.zcard(keys.expiry)).toBe(1);
  });

  it('purgeExpired works through more expired sessions than one batch', async () => {
    const repository = open({ ttlMs: 200 });
    const pipeline = raw.pipeline();
    const count = 1_203;
    const keys = repository.keys;
    for (let index = 0; index < count; index += 1) {
      // Leftovers as an expired session leaves them: bookkeeping, index entry, past expiry time.
      const sessionId = `expired-${index}`;
      const member = encodeIndexMember(index, sessionId);
      pipeline.hset(keys.meta, sessionId, JSON.stringify([1, member, null]));
      pipeline.zadd(keys.all, 0, member);
      pipeline.zadd(keys.expiry, index, sessionId);
    }
    await pipeline.exec();
    expect(await repository.purgeExpired?.()).toBe(count);
    expect(await keysOf(raw, keys.keyPrefix)).toEqual([]);
  });

  it('a session saved again before it expires keeps living, and purge leaves it alone', async () => {
    // Past the first expiry by 400 ms, 800 ms before the refreshed one: room for slow timers.
    const repository = open({ ttlMs: 2_000 });
    const first = await repository.save(makeSnapshot(), { expectedVersion: null });
    await sleep(1_200);
    const second = await repository.save(nextVersion(first), { expectedVersion: 1 });
    await sleep(1_200);
    expect(await repository.purgeExpired?.()).toBe(0);
    expect((await repository.get(first.sessionId))?.version).toBe(second.version);
  });

  it('a repository without TTL makes a session written with one permanent', async () => {
    const keyPrefix = randomPrefix();
    const withTtl = open({ keyPrefix, ttlMs: 300 });
    const without = open({ keyPrefix });
    const first = await withTtl.save(makeSnapshot(), { expectedVersion: null });
    await without.save(nextVersion(first), { expectedVersion: 1 });
    await sleep(500);
    expect((await withTtl.get(first.sessionId))?.version).toBe(2);
    expect(await raw.zscore(withTtl.keys.expiry, first.sessionId)).toBeNull();
    expect(await withTtl.purgeExpired?.()).toBe(0);
  });
});

describe('tombstones', () => {
  it('a create over a tombstone stores the next version, completed by the script as the last key', async () => {
    const repository = open({ historyLimit: 2 });
    const keys = repository.keys;
    const first = await repository.save(makeSnapshot(), { expectedVersion: null });
    const second = await repository.save(nextVersion(first), { expectedVersion: 1 });
    expect(await repository.delete(second.sessionId, { expectedVersion: 2 })).toBe(true);
    expect(await tombstoneOf(repository, second.sessionId)).toBe(2);
    // The snapshot says version 1 (a create); the script stores the version after the tombstone.
    const reborn = await repository.save(makeSnapshot({ sessionId: first.sessionId }), {
      expectedVersion: null,
    });
    expect(reborn.version).toBe(3);
    const json = (await raw.get(keys.session(first.sessionId))) as string;
    expect(json.endsWith(',"version":3}')).toBe(true);
    expect(Object.keys(JSON.parse(json)).at(-1)).toBe('version');
    expect(JSON.parse((await raw.hget(keys.meta, first.sessionId)) as string)).toEqual([
      3,
      encodeIndexMember(reborn.updatedAt.getTime(), reborn.sessionId),
      reborn.userId,
    ]);
    expect(await raw.zscore(keys.tombstones, first.sessionId)).toBeNull();
    expect(await raw.lrange(keys.history(first.sessionId), 0, -1)).toEqual([json]);
    expect((await repository.get(first.sessionId))?.version).toBe(3);
  });

  it('list never shows a tombstone, and a stale index entry of one is dropped', async () => {
    const repository = open();
    const userId = randomId('user');
    const gone = await repository.save(makeSnapshot({ userId }), { expectedVersion: null });
    const live = await repository.save(makeSnapshot({ userId }), { expectedVersion: null });
    expect(await repository.delete(gone.sessionId)).toBe(true);
    // An index entry a hand edit (or a bug) left for the tombstone.
    const member = encodeIndexMember(gone.updatedAt.getTime(), gone.sessionId);
    await raw.zadd(repository.keys.user(userId), 0, member);
    await raw.zadd(repository.keys.all, 0, member);
    expect(ids((await repository.list({ userId })).items)).toEqual([live.sessionId]);
    expect(ids((await repository.list()).items)).toEqual([live.sessionId]);
    expect(await raw.zcard(repository.keys.all)).toBe(1);
    expect(await tombstoneOf(repository, gone.sessionId)).toBe(1);
  });

  it('purgeExpired forgets tombstones older than tombstoneRetentionMs and keeps younger ones', async () => {
    let clock = Date.now();
    const repository = open({ now: () => clock, tombstoneRetentionMs: 3_000 });
    const old = await repository.save(makeSnapshot(), { expectedVersion: null });
    const young = await repository.save(makeSnapshot(), { expectedVersion: null });
    const oldAt = clock;
    expect(await repository.delete(old.sessionId)).toBe(true);
    clock += 5_000;
    expect(await repository.delete(young.sessionId)).toBe(true);
    expect(Number(await raw.zscore(repository.keys.tombstones, old.sessionId))).toBe(oldAt);
    clock += 1_000;
    // Nothing expired (no TTL), so the count is 0, but the old tombstone is gone.
    expect(await repository.purgeExpired()).toBe(0);
    expect(await raw.hget(repository.keys.meta, old.sessionId)).toBeNull();
    expect(await tombstoneOf(repository, young.sessionId)).toBe(1);
    expect(await raw.zrange(repository.keys.tombstones, '0', '-1')).toEqual([young.sessionId]);
    // Without its tombstone the id starts over (why the retention must outlast slow writers).
    expect(
      (await repository.save(makeSnapshot({ sessionId: old.sessionId }), { expectedVersion: null }))
        .version,
    ).toBe(1);
    expect(
      (
        await repository.save(makeSnapshot({ sessionId: young.sessionId }), {
          expectedVersion: null,
        })
      ).version,
    ).toBe(2);
  });

  it('purgeExpired forgets old tombstones in batches', async () => {
    const repository = open();
    const keys = repository.keys;
    const pipeline = raw.pipeline();
    const count = 1_203;
    for (let index = 0; index < count; index += 1) {
      pipeline.hset(keys.meta, `deleted-${index}`, JSON.stringify([2, false, false, index]));
      pipeline.zadd(keys.tombstones, index, `deleted-${index}`);
    }
    await pipeline.exec();
    expect(await repository.purgeExpired()).toBe(0);
    expect(await keysOf(raw, keys.keyPrefix)).toEqual([]);
  });

  it('a document written before custom fields existed reads fields as null and takes them on the next write', async () => {
    const repository = open();
    const snapshot = makeSnapshot();
    const { fields: _, ...older } = snapshot;
    const document = {
      ...older,
      createdAt: snapshot.createdAt.getTime(),
      updatedAt: snapshot.updatedAt.getTime(),
      version: 1,
    };
    await raw.set(repository.keys.session(snapshot.sessionId), JSON.stringify(document));
    const read = await repository.get(snapshot.sessionId);
    expect(read).toEqual({ ...snapshot, fields: null });
    const next = { ...nextVersion(read!), fields: { platform: 'fly', nested: [{ a: null }] } };
    await repository.save(next, { expectedVersion: 1 });
    const stored = JSON.parse((await raw.get(repository.keys.session(snapshot.sessionId)))!);
    expect(stored.fields).toEqual({ nested: [{ a: null }], platform: 'fly' });
    expect(Object.keys(stored).at(-1)).toBe('version');
    expect((await repository.get(snapshot.sessionId))?.fields).toEqual(stored.fields);
  });

  it('delete checks owner and version inside the script, also for a document written by hand', async () => {
    const repository = open();
    const snapshot = makeSnapshot();
    const document = {
      ...snapshot,
      createdAt: snapshot.createdAt.getTime(),
      updatedAt: snapshot.updatedAt.getTime(),
      version: 4,
    };
    await raw.set(repository.keys.session(snapshot.sessionId), JSON.stringify(document));
    const impostor = await rejectionOf(
      repository.delete(snapshot.sessionId, { userId: randomId('impostor') }),
    );
    expect(ContextError.hasCode(impostor, 'OWNERSHIP_MISMATCH')).toBe(true);
    const stale = await rejectionOf(repository.delete(snapshot.sessionId, { expectedVersion: 3 }));
    expect((stale as VersionConflictError).currentVersion).toBe(4);
    expect(
      await repository.delete(snapshot.sessionId, {
        userId: snapshot.userId as string,
        expectedVersion: 4,
      }),
    ).toBe(true);
    expect(await tombstoneOf(repository, snapshot.sessionId)).toBe(4);
    const again = await repository.save(makeSnapshot({ sessionId: snapshot.sessionId }), {
      expectedVersion: null,
    });
    expect(again.version).toBe(5);
  });

  it('get is a single GET: no script, no other command', async () => {
    const client = new Redis(REDIS_URL);
    const keyPrefix = randomPrefix();
    prefixes.push(keyPrefix);
    try {
      const repository = createRedisRepository({ client, keyPrefix });
      const snapshot = await repository.save(makeSnapshot(), { expectedVersion: null });
      const deleted = await repository.save(makeSnapshot(), { expectedVersion: null });
      await repository.delete(deleted.sessionId);
      const sent: string[] = [];
      const send = client.sendCommand.bind(client);
      client.sendCommand = ((command: Parameters<typeof send>[0], stream?: unknown) => {
        sent.push(command.name);
        return send(command, stream as Parameters<typeof send>[1]);
      }) as typeof client.sendCommand;
      expect((await repository.get(snapshot.sessionId))?.version).toBe(1);
      expect(await repository.get(deleted.sessionId)).toBeNull();
      expect(sent).toEqual(['get', 'get']);
      await repository.close();
    } finally {
      client.disconnect();
    }
  });
});

describe('scripts', () => {
  it('keeps working after SCRIPT FLUSH (the scripts are sent again once)', async () => {
    const repository = open({ ttlMs: 60_000, historyLimit: 3 });
    const userId = randomId('user');
    const first = await repository.save(makeSnapshot({ userId }), { expectedVersion: null });
    await raw.script('FLUSH');
    const second = await repository.save(nextVersion(first), { expectedVersion: 1 });
    await raw.script('FLUSH');
    const conflict = await rejectionOf(repository.save(nextVersion(first), { expectedVersion: 1 }));
    expect(VersionConflictError.isInstance(conflict)).toBe(true);
    expect((conflict as VersionConflictError).currentVersion).toBe(2);
    await raw.script('FLUSH');
    expect(ids((await repository.list({ userId })).items)).toEqual([second.sessionId]);
    await raw.script('FLUSH');
    expect(await repository.purgeExpired?.()).toBe(0);
    expect((await repository.history?.(first.sessionId))?.map((item) => item.version)).toEqual([
      2, 1,
    ]);
    await raw.script('FLUSH');
    expect(await repository.delete(first.sessionId)).toBe(true);
  });

  it('runs by digest: after the first load, saves send EVALSHA only', async () => {
    const repository = open();
    const first = await repository.save(makeSnapshot(), { expectedVersion: null });
    const before = await commandCalls(raw);
    let current = first;
    for (let index = 0; index < 5; index += 1) {
      current = await repository.save(nextVersion(current), { expectedVersion: current.version });
    }
    const after = await commandCalls(raw);
    expect(after.evalsha - before.evalsha).toBeGreaterThanOrEqual(5);
    expect(after.eval - before.eval).toBe(0);
  });
});

async function commandCalls(client: Redis): Promise<{ eval: number; evalsha: number }> {
  const info = await client.info('commandstats');
  const calls = (name: string) =>
    Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  return { eval: calls('eval'), evalsha: calls('evalsha') };
}

describe('clients', () => {
  it('an injected client is used as is and never closed by the repository', async () => {
    const client = new Redis(REDIS_URL);
    try {
      const keyPrefix = randomPrefix();
      prefixes.push(keyPrefix);
      const repository = createRedisRepository({ client, keyPrefix });
      expect(repository.client).toBe(client);
      const snapshot = await repository.save(makeSnapshot(), { expectedVersion: null });
      await repository.close();
      await repository.close();
      expect(client.status).toBe('ready');
      expect(
        JSON.parse((await client.get(repository.keys.session(snapshot.sessionId))) as string)
          .version,
      ).toBe(1);
      const error = await rejectionOf(repository.get(snapshot.sessionId));
      expect(ContextError.hasCode(error, 'CLOSED')).toBe(true);
    } finally {
      client.disconnect();
    }
  });

  it('an injected client its owner closed fails with STORAGE_UNAVAILABLE at once, saying why', async () => {
    const client = new Redis(REDIS_URL);
    const repository = createRedisRepository({ client, keyPrefix: randomPrefix() });
    await client.quit();
    const started = Date.now();
    const error = await rejectionOf(repository.get('anything'));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(ContextError.hasCode(error, 'STORAGE_UNAVAILABLE')).toBe(true);
    expect((error as StorageError).message).toMatch(/was closed/);
  });

  it('works through an injected client that has its own ioredis keyPrefix', async () => {
    const outer = `${randomPrefix('outer')}:`;
    const client = new Redis(REDIS_URL, { keyPrefix: outer });
    try {
      const repository = createRedisRepository({
        client,
        keyPrefix: 'ctx',
        ttlMs: 200,
        historyLimit: 2,
      });
      const [alice, bob] = [randomId('alice'), randomId('bob')];
      const first = await repository.save(makeSnapshot({ userId: alice }), {
        expectedVersion: null,
      });
      await repository.save({ ...nextVersion(first), userId: bob }, { expectedVersion: 1 });
      expect((await repository.list({ userId: alice })).items).toEqual([]);
      expect(ids((await repository.list({ userId: bob })).items)).toEqual([first.sessionId]);
      expect((await repository.history?.(first.sessionId))?.length).toBe(2);
      const stored = await raw.scan('0', 'MATCH', `${outer}*`, 'COUNT', 1000);
      expect(stored[1].every((key) => key.startsWith(`${outer}{ctx}:`))).toBe(true);
      await sleep(400);
      expect(await repository.purgeExpired?.()).toBe(1);
      const left = await raw.scan('0', 'MATCH', `${outer}*`, 'COUNT', 1000);
      expect(left[1].sort()).toEqual([`${outer}{ctx}:meta`, `${outer}{ctx}:tomb`]);
      expect(
        (
          await repository.save(makeSnapshot({ sessionId: first.sessionId }), {
            expectedVersion: null,
          })
        ).version,
      ).toBe(3);
    } finally {
      const left = await scanKeys(raw, `${outer}*`);
      if (left.length > 0) await raw.del(...left);
      client.disconnect();
    }
  });

  it('fails with STORAGE_UNAVAILABLE within the connect timeout when nothing listens', async () => {
    const repository = createRedisRepository({
      url: 'redis://127.0.0.1:1',
      connectTimeoutMs: 300,
    });
    try {
      const started = Date.now();
      const error = await rejectionOf(repository.get('anything'));
      expect(ContextError.hasCode(error, 'STORAGE_UNAVAILABLE')).toBe(true);
      expect((error as StorageError).message).toMatch(/127\.0\.0\.1:1.*unreachable|unreachable/);
      expect(Date.now() - started).toBeLessThan(2_000);
      const saves = await Promise.all(
        Array.from({ length: 20 }, () =>
          rejectionOf(repository.save(makeSnapshot(), { expectedVersion: null })),
        ),
      );
      for (const failure of saves)
        expect(ContextError.hasCode(failure, 'STORAGE_UNAVAILABLE')).toBe(true);
    } finally {
      await repository.close();
    }
  });

  it('a command that gets no reply fails with STORAGE_UNAVAILABLE after commandTimeoutMs', async () => {
    const repository = open({ commandTimeoutMs: 300 });
    const snapshot = await repository.save(makeSnapshot(), { expectedVersion: null });
    const blocker = createRawClient();
    try {
      // A script that keeps the (single-threaded) server busy for 1.5 s.
      const busy = blocker.eval(
        "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] while true do local n = redis.call('TIME') if n[1] * 1000000 + n[2] - s > 1500000 then break end end return 1",
        0,
      );
      await sleep(50);
      const started = Date.now();
      const error = await rejectionOf(repository.get(snapshot.sessionId));
      expect(ContextError.hasCode(error, 'STORAGE_UNAVAILABLE')).toBe(true);
      expect(Date.now() - started).toBeLessThan(1_200);
      expect(await busy).toBe(1);
      expect((await repository.get(snapshot.sessionId))?.version).toBe(1);
    } finally {
      blocker.disconnect();
    }
  });
  it('a call whose connection drops before the reply fails at once; the repository reconnects', async () => {
    const connectionName = `ctx-inflight-${randomId('c')}`;
    // A long command timeout: the failure must come from the lost connection, not from a timer.
    const repository = open({ commandTimeoutMs: 20_000, redisOptions: { connectionName } });
    const stored = await repository.save(makeSnapshot(), { expectedVersion: null });
    const clients = (await raw.client('LIST')) as string;
    const id = /id=(\d+) .*name=(\S+)/
      .exec(clients.split('\n').find((line) => line.includes(`name=${connectionName}`)) ?? '')
      ?.at(1);
    expect(id, 'the repository connection is listed').toBeDefined();
    // Writes (scripts included) wait while the server is paused: the save is sent, unanswered.
    await raw.call('CLIENT', 'PAUSE', '5000', 'WRITE');
    try {
      const started = Date.now();
      const inFlight = rejectionOf(repository.save(nextVersion(stored), { expectedVersion: 1 }));
      await sleep(100);
      await raw.call('CLIENT', 'KILL', 'ID', id as string);
      const error = await inFlight;
      expect(ContextError.hasCode(error, 'STORAGE_UNAVAILABLE'), String(error)).toBe(true);
      expect((error as StorageError).cause).toBeInstanceOf(Error);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await raw.call('CLIENT', 'UNPAUSE');
    }
    // The dropped save was never applied, and the same repository works again.
    expect((await repository.get(stored.sessionId))?.version).toBe(1);
    expect((await repository.save(nextVersion(stored), { expectedVersion: 1 })).version).toBe(2);
  });
});

describe('acl', () => {
  it('works for a user limited to the commands and key pattern the README lists', async () => {
    const user = randomId('ctx-acl');
    const password = randomId('pw');
    const keyPrefix = randomPrefix('acl');
    prefixes.push(keyPrefix);
    const commands =
      'EVALSHA EVAL GET SET DEL EXISTS HGET HSET HDEL INCR ZADD ZREM ZCARD ZSCORE ZRANGE ZRANGEBYSCORE ZREVRANGEBYLEX LPUSH LTRIM LRANGE PEXPIRE PERSIST PTTL';
    await raw.call(
      'ACL',
      'SETUSER',
      user,
      'on',
      `>${password}`,
      `~{${keyPrefix}}:*`,
      '-@all',
      '+hello',
      '+auth',
      ...commands.split(' ').map((command) => `+${command.toLowerCase()}`),
    );
    const url = new URL(REDIS_URL);
    url.username = user;
    url.password = password;
    const repository = createRedisRepository({
      url: url.toString(),
      keyPrefix,
      ttlMs: 200,
      historyLimit: 2,
      // Tombstones older than now are forgotten at once: purgeExpired runs every path.
      tombstoneRetentionMs: 0,
      redisOptions: { enableReadyCheck: false },
    });
    try {
      const [alice, bob] = [randomId('alice'), randomId('bob')];
      const first = await repository.save(makeSnapshot({ userId: alice }), {
        expectedVersion: null,
      });
      await repository.save({ ...nextVersion(first), userId: bob }, { expectedVersion: 1 });
      expect(ids((await repository.list({ userId: bob })).items)).toEqual([first.sessionId]);
      expect(ids((await repository.list()).items)).toEqual([first.sessionId]);
      expect((await repository.history?.(first.sessionId))?.length).toBe(2);
      await sleep(300);
      expect(await repository.purgeExpired?.()).toBe(1);
      const second = await repository.save(makeSnapshot(), { expectedVersion: null });
      expect((await repository.get(second.sessionId))?.version).toBe(1);
      expect(await repository.delete(second.sessionId, { userId: second.userId as string })).toBe(
        true,
      );
      const again = await repository.save(makeSnapshot({ sessionId: second.sessionId }), {
        expectedVersion: null,
      });
      expect(again.version).toBe(2);
      // The turn log: record, read, lease, fold in a save, purge the folded ids, drop with a delete.
      const turnInput: TurnInput = {
        turnId: randomId('turn'),
        userId: null,
        messages: [{ role: 'user', content: 'Hello' }],
      };
      await repository.recordTurn(again.sessionId, turnInput);
      await repository.recordTurn(again.sessionId, { ...turnInput, turnId: randomId('turn') });
      expect(await repository.sessionsWithPendingTurns()).toEqual([again.sessionId]);
      expect(await repository.acquireLease(again.sessionId, { holder: 'h', ttlMs: 60_000 })).toBe(
        true,
      );
      await repository.save(nextVersion(again), {
        expectedVersion: 2,
        foldedTurnIds: [turnInput.turnId],
      });
      expect(await repository.pendingTurns(again.sessionId)).toHaveLength(1);
      await repository.releaseLease(again.sessionId, 'h');
      await sleep(5);
      expect(await repository.purgeExpired?.()).toBe(0);
      expect((await repository.recordTurn(again.sessionId, turnInput)).duplicate).toBe(false);
      expect(await repository.delete(again.sessionId)).toBe(true);
      expect(await repository.pendingTurns(again.sessionId)).toEqual([]);
      // Outside its key pattern the same user is refused: STORAGE_ERROR with a hint.
      const other = createRedisRepository({ url: url.toString(), keyPrefix: randomPrefix() });
      try {
        const error = await rejectionOf(other.get('anything'));
        expect(ContextError.hasCode(error, 'STORAGE_ERROR')).toBe(true);
        expect((error as StorageError).message).toMatch(/NOPERM.*permissions/);
      } finally {
        await other.close();
      }
    } finally {
      await repository.close();
      await raw.call('ACL', 'DELUSER', user);
    }
  });
});

describe('errors', () => {
  it('a key holding another type is STORAGE_ERROR with the driver error as cause', async () => {
    const repository = open();
    const sessionId = randomId('wrongtype');
    await raw.hset(repository.keys.session(sessionId), 'field', 'value');
    const error = await rejectionOf(repository.get(sessionId));
    expect(ContextError.hasCode(error, 'STORAGE_ERROR')).toBe(true);
    expect((error as StorageError).message).toMatch(/WRONGTYPE.*keyPrefix/);
    expect((error as StorageError).cause).toBeInstanceOf(Error);
  });

  it('a foreign value at a session key is SCHEMA_MISMATCH for get, save and delete', async () => {
    const repository = open();
    const sessionId = randomId('foreign');
    await raw.set(repository.keys.session(sessionId), 'not json');
    expect(
      ContextError.hasCode(await rejectionOf(repository.get(sessionId)), 'SCHEMA_MISMATCH'),
    ).toBe(true);
    const overwrite = await rejectionOf(
      repository.save(makeSnapshot({ sessionId, version: 2 }), { expectedVersion: 1 }),
    );
    expect(ContextError.hasCode(overwrite, 'SCHEMA_MISMATCH')).toBe(true);
    const removal = await rejectionOf(repository.delete(sessionId));
    expect(ContextError.hasCode(removal, 'SCHEMA_MISMATCH')).toBe(true);
    expect(await raw.get(repository.keys.session(sessionId))).toBe('not json');
    // Decoding is strict: a document without its version is not a ctx document either.
    const { version: _version, ...fields } = makeSnapshot({ sessionId });
    const unversioned = {
      ...fields,
      createdAt: fields.createdAt.getTime(),
      updatedAt: fields.updatedAt.getTime(),
    };
    await raw.set(repository.keys.session(sessionId), JSON.stringify(unversioned));
    expect(
      ContextError.hasCode(await rejectionOf(repository.get(sessionId)), 'SCHEMA_MISMATCH'),
    ).toBe(true);
    // …and with it, the same document is read.
    await raw.set(
      repository.keys.session(sessionId),
      JSON.stringify({ ...unversioned, version: 1 }),
    );
    expect((await repository.get(sessionId))?.version).toBe(1);
  });

  it('a session written by hand without bookkeeping is still compare-and-set protected', async () => {
    const repository = open();
    const snapshot = makeSnapshot();
    const document = {
      ...snapshot,
      createdAt: snapshot.createdAt.getTime(),
      updatedAt: snapshot.updatedAt.getTime(),
      version: 4,
    };
    await raw.set(repository.keys.session(snapshot.sessionId), JSON.stringify(document));
    const conflict = await rejectionOf(
      repository.save(makeSnapshot({ sessionId: snapshot.sessionId }), { expectedVersion: null }),
    );
    expect((conflict as VersionConflictError).currentVersion).toBe(4);
    const fifth = await repository.save({ ...snapshot, version: 5 }, { expectedVersion: 4 });
    expect((await repository.get(snapshot.sessionId))?.version).toBe(fifth.version);
  });
});

describe('turn log', () => {
  const turn = (overrides: Partial<TurnInput> = {}): TurnInput => ({
    turnId: randomId('turn'),
    userId: randomId('user'),
    messages: [
      { role: 'user', content: 'Deploy on Friday? 🚀 "quoted" \\ back\\slash </script> \u2028' },
      { role: 'assistant', content: 'After the migration.\nLine two.' },
    ],
    ...overrides,
  });

  it('stores turns under documented keys with the repository clock, and a save folds them', async () => {
    let clock = Date.UTC(2025, 0, 2);
    const repository = open({ now: () => clock });
    const keys = repository.keys;
    const sessionId = randomId('session');
    const [first, second] = [turn(), turn({ userId: null })];
    const a = await repository.recordTurn(sessionId, first);
    const recordedAt = clock;
    clock += 1_000;
    const b = await repository.recordTurn(sessionId, second);

    expect(keys.turns(sessionId)).toBe(`{${keys.keyPrefix}}:t:${sessionId}`);
    expect(await keysOf(raw, keys.keyPrefix)).toEqual(
      [
        keys.turns(sessionId),
        keys.pendingTurns(sessionId),
        keys.pendingSessions,
        keys.turnSequence,
      ].sort(),
    );
    // The messages are the client's JSON, stored as sent (the scripts never re-encode them).
    expect(await raw.hget(keys.turns(sessionId), first.turnId)).toBe(
      JSON.stringify([a.sequence, recordedAt, first.userId, first.messages]),
    );
    expect(await raw.zrange(keys.pendingTurns(sessionId), '0', '-1', 'WITHSCORES')).toEqual([
      first.turnId,
      String(a.sequence),
      second.turnId,
      String(b.sequence),
    ]);
    expect(await raw.zscore(keys.pendingSessions, sessionId)).toBe(String(recordedAt));

    clock += 1_000;
    const firstFold = clock;
    const snapshot = await repository.save(makeSnapshot({ sessionId }), {
      expectedVersion: null,
      foldedTurnIds: [first.turnId, 'never-recorded'],
    });
    // Folded: the sequence stays (a duplicate check), the messages go; unknown ids are ignored.
    expect(await raw.hget(keys.turns(sessionId), first.turnId)).toBe(`[${a.sequence}]`);
    expect(await raw.hexists(keys.turns(sessionId), 'never-recorded')).toBe(0);
    expect(await raw.zscore(keys.foldedTurns(sessionId), first.turnId)).toBe(String(firstFold));
    expect(await raw.zscore(keys.foldedSessions, sessionId)).toBe(String(firstFold));
    // The pending index now holds the oldest turn still pending.
    expect(await raw.zscore(keys.pendingSessions, sessionId)).toBe(String(recordedAt + 1_000));

    clock += 1_000;
    await repository.save(nextVersion(snapshot), {
      expectedVersion: 1,
      foldedTurnIds: [second.turnId],
    });
    expect(await raw.exists(keys.pendingTurns(sessionId))).toBe(0);
    expect(await raw.zscore(keys.pendingSessions, sessionId)).toBeNull();
    // The folded index keeps the session's oldest fold time, what purgeExpired looks at.
    expect(await raw.zscore(keys.foldedSessions, sessionId)).toBe(String(firstFold));
    expect(await raw.zcard(keys.foldedTurns(sessionId))).toBe(2);
    expect(await repository.pendingTurns(sessionId)).toEqual([]);
  });

  it('leases and the pending-sessions query follow the repository clock, not the server time', async () => {
    const start = Date.UTC(2030, 0, 1);
    let clock = start;
    const repository = open({ now: () => clock });
    const [early, late] = [randomId('early'), randomId('late')];
    await repository.recordTurn(early, turn());
    clock += 1_000;
    await repository.recordTurn(late, turn());
    expect(
      await repository.sessionsWithPendingTurns({ recordedBefore: new Date(start + 500) }),
    ).toEqual([early]);
    expect(await repository.sessionsWithPendingTurns()).toEqual([early, late]);
    expect(await repository.sessionsWithPendingTurns({ limit: 1 })).toEqual([early]);

    expect(await repository.acquireLease(early, { holder: 'alpha', ttlMs: 1_000 })).toBe(true);
    expect(await raw.zscore(repository.keys.leases, early)).toBe(String(clock + 1_000));
    expect(await raw.hget(repository.keys.leaseHolders, early)).toBe('alpha');
    expect(await repository.sessionsWithPendingTurns()).toEqual([late]);
    clock += 999;
    expect(await repository.acquireLease(early, { holder: 'beta', ttlMs: 1_000 })).toBe(false);
    clock += 1;
    // Expired at now: no lease any more, for the query and for another holder.
    expect(await repository.sessionsWithPendingTurns()).toEqual([early, late]);
    expect(await repository.acquireLease(early, { holder: 'beta', ttlMs: 1_000 })).toBe(true);
    await repository.releaseLease(early, 'alpha');
    expect(await raw.hget(repository.keys.leaseHolders, early)).toBe('beta');
    await repository.releaseLease(early, 'beta');
    expect(await raw.exists(repository.keys.leases, repository.keys.leaseHolders)).toBe(0);
  });

  it('delete drops the turn log and lease when it removes the session or finds none, never when it refuses', async () => {
    const repository = open();
    const keys = repository.keys;
    const owner = randomId('alice');
    const snapshot = await repository.save(makeSnapshot({ userId: owner }), {
      expectedVersion: null,
    });
    const { sessionId } = snapshot;
    const [folded, pending] = [turn(), turn()];
    await repository.recordTurn(sessionId, folded);
    await repository.recordTurn(sessionId, pending);
    await repository.save(nextVersion(snapshot), {
      expectedVersion: 1,
      foldedTurnIds: [folded.turnId],
    });
    expect(await repository.acquireLease(sessionId, { holder: 'folder', ttlMs: 60_000 })).toBe(
      true,
    );
    const everything = async () => [
      await raw.exists(
        keys.turns(sessionId),
        keys.pendingTurns(sessionId),
        keys.foldedTurns(sessionId),
      ),
      await raw.zscore(keys.pendingSessions, sessionId),
      await raw.zscore(keys.foldedSessions, sessionId),
      await raw.zscore(keys.leases, sessionId),
      await raw.hget(keys.leaseHolders, sessionId),
    ];
    const before = await everything();
    expect(before[0]).toBe(3);
    expect(before.every((value) => value !== null)).toBe(true);

    const impostor = await rejectionOf(repository.delete(sessionId, { userId: randomId('bob') }));
    expect(ContextError.hasCode(impostor, 'OWNERSHIP_MISMATCH')).toBe(true);
    const stale = await rejectionOf(repository.delete(sessionId, { expectedVersion: 1 }));
    expect(ContextError.hasCode(stale, 'VERSION_CONFLICT')).toBe(true);
    expect(await everything()).toEqual(before);

    expect(await repository.delete(sessionId, { userId: owner, expectedVersion: 2 })).toBe(true);
    expect(await everything()).toEqual([0, null, null, null, null]);
    // What stays: the tombstone, and the prefix's sequence counter (sequences never repeat).
    expect(await keysOf(raw, keys.keyPrefix)).toEqual(
      [keys.meta, keys.tombstones, keys.turnSequence].sort(),
    );
    const again = await repository.recordTurn(sessionId, folded);
    expect(again.duplicate).toBe(false);

    // A delete that finds no live session (here, a tombstone) drops the log too.
    expect(await repository.delete(sessionId)).toBe(false);
    expect(await everything()).toEqual([0, null, null, null, null]);
  });

  it('purgeExpired forgets folded ids older than the tombstone retention, in batches, and lapsed leases', async () => {
    let clock = Date.now();
    const repository = open({
      now: () => clock,
      tombstoneRetentionMs: 10_000,
      maxPendingTurns: 2_000,
    });
    const keys = repository.keys;
    const [old, young] = [randomId('old'), randomId('young')];
    const turns = Array.from({ length: 1_203 }, () => turn());
    const recorded = await Promise.all(turns.map((item) => repository.recordTurn(old, item)));
    await repository.save(makeSnapshot({ sessionId: old }), {
      expectedVersion: null,
      foldedTurnIds: turns.map((item) => item.turnId),
    });
    expect(await raw.hlen(keys.turns(old))).toBe(1_203);
    clock += 5_000;
    const kept = turn();
    await repository.recordTurn(young, kept);
    await repository.save(makeSnapshot({ sessionId: young }), {
      expectedVersion: null,
      foldedTurnIds: [kept.turnId],
    });
    await repository.acquireLease(old, { holder: 'crashed', ttlMs: 1_000 });
    await repository.acquireLease(young, { holder: 'working', ttlMs: 60_000 });
    clock += 6_000;

    expect(await repository.purgeExpired()).toBe(0);
    expect(await raw.exists(keys.turns(old), keys.foldedTurns(old))).toBe(0);
    expect(await raw.zrange(keys.foldedSessions, '0', '-1')).toEqual([young]);
    expect(await raw.hget(keys.turns(young), kept.turnId)).not.toBeNull();
    expect(await raw.zrange(keys.leases, '0', '-1')).toEqual([young]);
    expect(await raw.hkeys(keys.leaseHolders)).toEqual([young]);
    // A forgotten id is a new turn again, with a sequence after every one handed out.
    const again = await repository.recordTurn(old, turns[0] as TurnInput);
    expect(again.duplicate).toBe(false);
    expect(again.sequence).toBeGreaterThan(Math.max(...recorded.map((item) => item.sequence)));
    expect((await repository.recordTurn(young, kept)).duplicate).toBe(true);
  });

  it('works through an injected client that has its own ioredis keyPrefix', async () => {
    const outer = `${randomPrefix('outer')}:`;
    const client = new Redis(REDIS_URL, { keyPrefix: outer });
    let clock = Date.now();
    try {
      const repository = createRedisRepository({
        client,
        keyPrefix: 'ctx',
        now: () => clock,
        tombstoneRetentionMs: 1_000,
      });
      const sessionId = randomId('session');
      const item = turn();
      await repository.recordTurn(sessionId, item);
      await repository.acquireLease(sessionId, { holder: 'folder', ttlMs: 500 });
      expect(await repository.sessionsWithPendingTurns()).toEqual([]);
      const snapshot = makeSnapshot({ sessionId });
      await repository.save(snapshot, { expectedVersion: null, foldedTurnIds: [item.turnId] });
      const stored = await scanKeys(raw, `${outer}*`);
      expect(stored.every((key) => key.startsWith(`${outer}{ctx}:`))).toBe(true);
      expect(stored).toContain(`${outer}{ctx}:tf:${sessionId}`);
      clock += 2_000;
      expect(await repository.purgeExpired()).toBe(0);
      expect(await scanKeys(raw, `${outer}*`)).toEqual(
        ['all', 'meta', `s:${sessionId}`, 'turnseq', `u:${snapshot.userId}`]
          .map((name) => `${outer}{ctx}:${name}`)
          .sort(),
      );
    } finally {
      const left = await scanKeys(raw, `${outer}*`);
      if (left.length > 0) await raw.del(...left);
      client.disconnect();
    }
  });

  it('a foreign record in a turn log is SCHEMA_MISMATCH', async () => {
    const repository = open();
    const sessionId = randomId('foreign');
    await raw.hset(repository.keys.turns(sessionId), 'x', 'not a turn');
    await raw.zadd(repository.keys.pendingTurns(sessionId), 1, 'x');
    const reading = await rejectionOf(repository.pendingTurns(sessionId));
    expect(ContextError.hasCode(reading, 'SCHEMA_MISMATCH')).toBe(true);
    expect((reading as StorageError).message).toMatch(/does not hold a ctx turn/);
    const recording = await rejectionOf(repository.recordTurn(sessionId, turn({ turnId: 'x' })));
    expect(ContextError.hasCode(recording, 'SCHEMA_MISMATCH')).toBe(true);
    expect(await raw.hget(repository.keys.turns(sessionId), 'x')).toBe('not a turn');
  });
});

describe('options', () => {
  const invalid: Array<[string, unknown]> = [
    ['neither url nor client', {}],
    ['both url and client', { url: REDIS_URL, client: raw }],
    ['an http URL', { url: 'http://127.0.0.1:6379' }],
    ['a malformed URL', { url: 'not a url' }],
    ['a client that is not ioredis', { client: { get() {} } }],
    ['a zero TTL', { url: REDIS_URL, ttlMs: 0 }],
    ['a fractional TTL', { url: REDIS_URL, ttlMs: 1.5 }],
    ['a negative history limit', { url: REDIS_URL, historyLimit: -1 }],
    ['a huge history limit', { url: REDIS_URL, historyLimit: 10_001 }],
    ['a zero connect timeout', { url: REDIS_URL, connectTimeoutMs: 0 }],
    ['a negative command timeout', { url: REDIS_URL, commandTimeoutMs: -5 }],
    ['a key prefix with braces', { url: REDIS_URL, keyPrefix: '{ctx}' }],
    ['redisOptions that are not an object', { url: REDIS_URL, redisOptions: 'fast' }],
  ];
  for (const [label, options] of invalid) {
    it(`refuses ${label} with INVALID_CONFIG`, () => {
      let thrown: unknown;
      try {
        createRedisRepository(options as RedisRepositoryOptions);
      } catch (error) {
        thrown = error;
      }
      expect(ContextError.hasCode(thrown, 'INVALID_CONFIG')).toBe(true);
    });
  }

  it('declares its capabilities from ttlMs and historyLimit, and always the turn log', () => {
    const repository = open({ ttlMs: 1_000, historyLimit: 4 });
    expect(repository.capabilities).toEqual({
      ttl: true,
      history: true,
      turnLog: true,
      fields: true,
    });
    expect(typeof repository.purgeExpired).toBe('function');
    expect(typeof repository.history).toBe('function');
  });

  it('history clamps its limit to historyLimit and refuses a bad limit', async () => {
    const repository = open({ historyLimit: 2 });
    let current = await repository.save(makeSnapshot(), { expectedVersion: null });
    for (let version = 2; version <= 4; version += 1) {
      current = await repository.save(nextVersion(current), { expectedVersion: version - 1 });
    }
    expect(
      (await repository.history?.(current.sessionId, { limit: 10 }))?.map((item) => item.version),
    ).toEqual([4, 3]);
    expect(await raw.llen(repository.keys.history(current.sessionId))).toBe(2);
    for (const limit of [0, -1, 1.5]) {
      const error = await rejectionOf(
        repository.history?.(current.sessionId, { limit }) as Promise<unknown>,
      );
      expect(ContextError.hasCode(error, 'INVALID_INPUT')).toBe(true);
    }
  });
});
