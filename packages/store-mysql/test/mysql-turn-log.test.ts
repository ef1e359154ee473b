import { makeSnapshot, nextVersion, randomId } from '@ctx/conformance';
import { ContextError, type TurnInput } from '@ctx/core';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlRepository, type MysqlRepository } from '../src/index.js';
import { createTestPool, dropTables, randomTable } from './helpers.js';

const tableName = randomTable('turn_log');
let pool: Pool;
let other: Pool;
const repositories: MysqlRepository[] = [];

type Options = Partial<Parameters<typeof createMysqlRepository>[0]>;

function open(options: Options = {}) {
  const repository = createMysqlRepository({ pool, tableName, ...options } as Parameters<
    typeof createMysqlRepository
  >[0]);
  repositories.push(repository);
  return repository;
}

const turn = (overrides: Partial<TurnInput> = {}): TurnInput => ({
  turnId: randomId('turn'),
  userId: randomId('user'),
  messages: [{ role: 'user', content: 'Hello 🙂' }],
  ...overrides,
});

async function rows(sql: string, values: unknown[] = []): Promise<RowDataPacket[]> {
  const [result] = await pool.query<RowDataPacket[]>(sql, values);
  return result;
}

const turnRows = (sessionId: string) =>
  rows(
    `SELECT turn_id, user_id, messages, folded_at FROM \`${tableName}_turns\` WHERE session_id = ? ORDER BY sequence`,
    [sessionId],
  );

const leaseRows = (sessionIds: string[]) =>
  rows(
    `SELECT session_id, holder FROM \`${tableName}_leases\` WHERE session_id IN (?) ORDER BY session_id`,
    [sessionIds],
  );

beforeAll(async () => {
  pool = createTestPool();
  other = createTestPool();
  await createMysqlRepository({ pool, tableName }).migrate();
});

afterEach(async () => {
  for (const repository of repositories.splice(0)) await repository.close();
});

afterAll(async () => {
  try {
    await dropTables(pool, tableName);
  } finally {
    await Promise.allSettled([pool.end(), other.end()]);
  }
});

describe('turn log', () => {
  it('an update without history folds in its transaction, not in the one-statement path', async () => {
    const repository = open();
    const first = await repository.save(makeSnapshot(), { expectedVersion: null });
    const { sessionId } = first;
    const [a, b] = [turn(), turn()];
    await repository.recordTurn(sessionId, a);
    await repository.recordTurn(sessionId, b);
    const second = await repository.save(nextVersion(first), {
      expectedVersion: 1,
      foldedTurnIds: [a.turnId],
    });
    expect(second.version).toBe(2);
    expect((await repository.pendingTurns(sessionId)).map((item) => item.turnId)).toEqual([
      b.turnId,
    ]);
    // A folded turn keeps its id, sequence and fold time; its sender and messages go.
    const [folded, pending] = await turnRows(sessionId);
    expect(folded).toMatchObject({ user_id: null, messages: null });
    expect(Number(folded?.folded_at)).toBeGreaterThan(0);
    expect(pending).toMatchObject({ folded_at: null });
    expect((await repository.recordTurn(sessionId, a)).duplicate).toBe(true);
  });

  it('the pending bound holds when twenty records race on two pools', async () => {
    const one = open({ maxPendingTurns: 5 });
    const two = open({ pool: other, maxPendingTurns: 5 });
    const sessionId = randomId();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, index) =>
        (index % 2 ? one : two).recordTurn(sessionId, turn()),
      ),
    );
    const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
    expect(outcomes.length - refused.length).toBe(5);
    for (const outcome of refused) {
      expect(ContextError.hasCode(outcome.reason, 'BACKPRESSURE')).toBe(true);
    }
    const pending = await one.pendingTurns(sessionId);
    expect(pending).toHaveLength(5);
    expect(new Set(pending.map((item) => item.sequence)).size).toBe(5);
  });

  it('a lease survives records and folds of its session, and goes with a delete', async () => {
    const repository = open();
    const sessionId = randomId();
    const [alpha, beta] = [randomId('holder'), randomId('holder')];
    expect(await repository.acquireLease(sessionId, { holder: alpha, ttlMs: 60_000 })).toBe(true);
    const recorded = turn();
    await repository.recordTurn(sessionId, recorded);
    await repository.save(makeSnapshot({ sessionId }), {
      expectedVersion: null,
      foldedTurnIds: [recorded.turnId],
    });
    expect(await repository.acquireLease(sessionId, { holder: beta, ttlMs: 60_000 })).toBe(false);
    expect(await repository.delete(sessionId)).toBe(true);
    expect(await leaseRows([sessionId])).toEqual([]);
    expect(await turnRows(sessionId)).toEqual([]);
    expect(await repository.acquireLease(sessionId, { holder: beta, ttlMs: 60_000 })).toBe(true);
  });

  it('a delete refused for its owner or version leaves the turns and the lease alone', async () => {
    const repository = open();
    const saved = await repository.save(makeSnapshot({ userId: randomId('owner') }), {
      expectedVersion: null,
    });
    const { sessionId } = saved;
    const holder = randomId('holder');
    await repository.recordTurn(sessionId, turn());
    await repository.acquireLease(sessionId, { holder, ttlMs: 60_000 });
    await expect(repository.delete(sessionId, { userId: randomId('impostor') })).rejects.toSatisfy(
      (error) => ContextError.hasCode(error, 'OWNERSHIP_MISMATCH'),
    );
    await expect(repository.delete(sessionId, { expectedVersion: 2 })).rejects.toSatisfy((error) =>
      ContextError.hasCode(error, 'VERSION_CONFLICT'),
    );
    expect(await repository.pendingTurns(sessionId)).toHaveLength(1);
    expect(
      await repository.acquireLease(sessionId, { holder: randomId('holder'), ttlMs: 60_000 }),
    ).toBe(false);
  });

  it('purge forgets folded ids after the retention and the rows of free leases without turns', async () => {
    let clock = Date.now();
    const repository = open({ tombstoneRetentionMs: 1_000, now: () => clock });
    const [folding, pending, held] = [randomId(), randomId(), randomId()];
    const [a, b] = [turn(), turn()];
    const first = await repository.recordTurn(folding, a);
    await repository.recordTurn(folding, b);
    await repository.save(makeSnapshot({ sessionId: folding }), {
      expectedVersion: null,
      foldedTurnIds: [a.turnId, b.turnId],
    });
    await repository.recordTurn(pending, turn());
    await repository.acquireLease(held, { holder: randomId('holder'), ttlMs: 600_000 });
    const sessions = [folding, pending, held];
    const leased = async () =>
      (await leaseRows(sessions)).map((row) => (row.session_id as Buffer).toString());

    clock += 1_000;
    await repository.purgeExpired();
    expect((await turnRows(folding)).map((row) => (row.turn_id as Buffer).toString())).toEqual([
      a.turnId,
      b.turnId,
    ]);
    expect((await repository.recordTurn(folding, a)).duplicate).toBe(true);
    expect(await leased()).toEqual([...sessions].sort());

    clock += 1;
    await repository.purgeExpired();
    expect(await turnRows(folding)).toEqual([]);
    // A session with a pending turn keeps its row, and so does a live lease.
    expect(await leased()).toEqual([pending, held].sort());
    // Forgotten: the id is new again, after every sequence the session used.
    const again = await repository.recordTurn(folding, a);
    expect(again.duplicate).toBe(false);
    expect(again.sequence).toBeGreaterThan(first.sequence + 1);
  });
});
