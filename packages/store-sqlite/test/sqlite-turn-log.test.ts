import { ContextError, type TurnInput } from '@ctx/core';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteRepository } from '../src/index.js';
import { makeSnapshot, nextVersion, randomId, rejectionOf, removeTempFolders } from './helpers.js';

afterAll(removeTempFolders);

const turn = (overrides: Partial<TurnInput> = {}): TurnInput => ({
  turnId: randomId('turn'),
  userId: randomId('user'),
  messages: [
    { role: 'user', content: 'Deploy on Friday? 🚀 "quoted"' },
    { role: 'assistant', content: 'After the migration.' },
  ],
  ...overrides,
});

/** A repository on a private in-memory database, with a clock the test moves. */
function open(options: { tombstoneRetentionMs?: number; maxPendingTurns?: number } = {}) {
  const database = new Database(':memory:');
  const clock = { now: 1_000_000 };
  const repository = createSqliteRepository({ database, now: () => clock.now, ...options });
  return { database, clock, repository };
}

function turnRows(database: Database.Database, sessionId: string): unknown[] {
  return database
    .prepare(
      'SELECT turn_id, sequence, user_id, messages, recorded_at, folded_at FROM ctx_sessions_turns WHERE session_id = ? ORDER BY sequence',
    )
    .all(sessionId);
}

function leaseOf(database: Database.Database, sessionId: string): unknown {
  return database
    .prepare('SELECT holder, expires_at FROM ctx_sessions_leases WHERE session_id = ?')
    .get(sessionId);
}

describe('turn log storage', () => {
  it('stores a pending turn as JSON text, and a folded one as its id, sequence and fold time', async () => {
    const { database, clock, repository } = open();
    const sessionId = randomId('session');
    const first = turn();
    const second = turn({ userId: null });
    const a = await repository.recordTurn(sessionId, first);
    clock.now += 10;
    const b = await repository.recordTurn(sessionId, second);
    expect(turnRows(database, sessionId)).toEqual([
      {
        turn_id: first.turnId,
        sequence: a.sequence,
        user_id: first.userId,
        messages: JSON.stringify(first.messages),
        recorded_at: 1_000_000,
        folded_at: null,
      },
      {
        turn_id: second.turnId,
        sequence: b.sequence,
        user_id: null,
        messages: JSON.stringify(second.messages),
        recorded_at: 1_000_010,
        folded_at: null,
      },
    ]);

    clock.now += 10;
    await repository.save(makeSnapshot({ sessionId }), {
      expectedVersion: null,
      foldedTurnIds: [first.turnId],
    });
    expect(turnRows(database, sessionId)[0]).toEqual({
      turn_id: first.turnId,
      sequence: a.sequence,
      user_id: null,
      messages: null,
      recorded_at: 1_000_000,
      folded_at: 1_000_020,
    });
    const [pending] = await repository.pendingTurns(sessionId);
    expect(pending).toEqual({ ...second, sequence: b.sequence, recordedAt: new Date(1_000_010) });
    database.close();
  });

  it('a fold touches only pending turns of its own session', async () => {
    const { database, repository } = open();
    const [mine, other] = [randomId('mine'), randomId('other')];
    const shared = turn();
    await repository.recordTurn(mine, shared);
    await repository.recordTurn(other, shared);
    await repository.save(makeSnapshot({ sessionId: mine }), {
      expectedVersion: null,
      foldedTurnIds: [shared.turnId, 'never-recorded'],
    });
    expect(await repository.pendingTurns(mine)).toEqual([]);
    expect((await repository.pendingTurns(other)).map((item) => item.turnId)).toEqual([
      shared.turnId,
    ]);
    database.close();
  });

  it('sequences never restart, also after a delete dropped the log', async () => {
    const { database, repository } = open();
    const sessionId = randomId('session');
    const before = await repository.recordTurn(sessionId, turn());
    expect(await repository.delete(sessionId)).toBe(false);
    expect(turnRows(database, sessionId)).toEqual([]);
    const after = await repository.recordTurn(sessionId, turn());
    expect(after.sequence).toBeGreaterThan(before.sequence);
    database.close();
  });

  it('a refused delete keeps the turns and the lease; a delete that finds none live drops both', async () => {
    const { database, repository } = open();
    const snapshot = makeSnapshot();
    const { sessionId } = snapshot;
    await repository.save(snapshot, { expectedVersion: null });
    await repository.recordTurn(sessionId, turn());
    expect(await repository.acquireLease(sessionId, { holder: 'folder', ttlMs: 60_000 })).toBe(
      true,
    );
    const rows = turnRows(database, sessionId);

    const impostor = await rejectionOf(repository.delete(sessionId, { userId: randomId('bob') }));
    expect(ContextError.hasCode(impostor, 'OWNERSHIP_MISMATCH')).toBe(true);
    const stale = await rejectionOf(repository.delete(sessionId, { expectedVersion: 7 }));
    expect(ContextError.hasCode(stale, 'VERSION_CONFLICT')).toBe(true);
    expect(turnRows(database, sessionId)).toEqual(rows);
    expect(leaseOf(database, sessionId)).toEqual({ holder: 'folder', expires_at: 1_060_000 });

    expect(await repository.delete(sessionId)).toBe(true);
    expect(turnRows(database, sessionId)).toEqual([]);
    expect(leaseOf(database, sessionId)).toBeUndefined();
    database.close();
  });

  it('purgeExpired forgets folded turns older than tombstoneRetentionMs and expired leases, and only those', async () => {
    const { database, clock, repository } = open({ tombstoneRetentionMs: 10_000 });
    const sessionId = randomId('session');
    const [old, recent, pending] = [turn(), turn(), turn()];
    for (const item of [old, recent, pending]) await repository.recordTurn(sessionId, item);
    const first = await repository.save(makeSnapshot({ sessionId }), {
      expectedVersion: null,
      foldedTurnIds: [old.turnId],
    });
    clock.now += 5_000;
    await repository.save(nextVersion(first, 'v2'), {
      expectedVersion: 1,
      foldedTurnIds: [recent.turnId],
    });
    const [expired, live] = [randomId('expired'), randomId('live')];
    await repository.acquireLease(expired, { holder: 'h', ttlMs: 1_000 });
    await repository.acquireLease(live, { holder: 'h', ttlMs: 60_000 });

    clock.now = 1_010_001;
    await repository.purgeExpired();
    expect(
      turnRows(database, sessionId).map((row) => (row as { turn_id: string }).turn_id),
    ).toEqual([recent.turnId, pending.turnId]);
    expect(leaseOf(database, expired)).toBeUndefined();
    expect(leaseOf(database, live)).toBeDefined();
    // A forgotten id may be recorded again (as a new turn); a remembered one is still a duplicate.
    expect((await repository.recordTurn(sessionId, recent)).duplicate).toBe(true);
    expect((await repository.recordTurn(sessionId, old)).duplicate).toBe(false);
    database.close();
  });

  it('sessionsWithPendingTurns: oldest pending turn first, recordedBefore inclusive, expired leases ignored', async () => {
    const { database, clock, repository } = open();
    const [late, early, leased, lapsed] = [
      randomId('late'),
      randomId('early'),
      randomId('leased'),
      randomId('lapsed'),
    ];
    for (const [sessionId, at] of [
      [early, 1_000],
      [late, 3_000],
      [leased, 500],
      [lapsed, 2_000],
    ] as const) {
      clock.now = at;
      await repository.recordTurn(sessionId, turn());
    }
    clock.now = 4_000;
    // A later turn does not make a session's oldest pending turn any younger.
    await repository.recordTurn(early, turn());
    await repository.acquireLease(leased, { holder: 'h', ttlMs: 60_000 });
    clock.now = 2_000;
    await repository.acquireLease(lapsed, { holder: 'h', ttlMs: 100 });

    clock.now = 5_000;
    expect(await repository.sessionsWithPendingTurns()).toEqual([early, lapsed, late]);
    expect(
      await repository.sessionsWithPendingTurns({ recordedBefore: new Date(2_000), limit: 10 }),
    ).toEqual([early, lapsed]);
    expect(await repository.sessionsWithPendingTurns({ limit: 1 })).toEqual([early]);
    database.close();
  });

  it('a pending turn altered outside ctx reads as STORAGE_ERROR', async () => {
    const { database, repository } = open();
    const sessionId = randomId('session');
    const { turnId } = turn();
    await repository.recordTurn(sessionId, turn({ turnId }));
    database
      .prepare(`UPDATE ctx_sessions_turns SET messages = '[{"role":"robot"}]' WHERE turn_id = ?`)
      .run(turnId);
    const error = await rejectionOf(repository.pendingTurns(sessionId));
    expect(ContextError.hasCode(error, 'STORAGE_ERROR')).toBe(true);
    expect((error as Error).message).toMatch(/invalid messages column/);
    database.close();
  });
});
