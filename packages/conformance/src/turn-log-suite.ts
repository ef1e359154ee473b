import type { ContextRepository, Message, SessionContext, TurnInput, TurnLog } from '@ctx/core';
import { describe, expect } from 'vitest';
import { expectContextError } from './assertions.js';
import type { RepositoryFactoryOptions } from './harness.js';
import { makeSnapshot, nextVersion, randomId, sleep } from './random.js';

/** What the main suite lends the turn-log group. */
export interface TurnLogSuiteContext {
  test(name: string, body: () => Promise<void>): void;
  openPair(
    options?: RepositoryFactoryOptions,
  ): Promise<[first: ContextRepository, second: ContextRepository]>;
}

type TurnLogRepository = ContextRepository & TurnLog;

function withTurnLog(repository: ContextRepository): TurnLogRepository {
  expect(
    repository.capabilities?.turnLog,
    'a repository of a harness declaring turnLog must declare capabilities.turnLog',
  ).toBe(true);
  for (const method of [
    'recordTurn',
    'pendingTurns',
    'acquireLease',
    'releaseLease',
    'sessionsWithPendingTurns',
  ] as const) {
    expect(typeof repository[method], `${method}() must exist`).toBe('function');
  }
  return repository as TurnLogRepository;
}

const turn = (overrides: Partial<TurnInput> = {}): TurnInput => ({
  turnId: randomId('turn'),
  userId: randomId('user'),
  messages: [
    { role: 'user', content: 'Can we deploy on Friday? 🚀 — «ja»' },
    { role: 'assistant', content: 'Yes, after the migration.\nLine two.' },
  ] satisfies Message[],
  ...overrides,
});

/**
 * The turn-log group (capability `turnLog`): recording is atomic and idempotent by turn id on two
 * connections, bounded with `BACKPRESSURE`, folded by a compare-and-set save that removes exactly
 * the folded turns, and leased one holder at a time.
 */
export function describeTurnLogGroup(context: TurnLogSuiteContext): void {
  const { test } = context;
  const openPair = async (options?: RepositoryFactoryOptions) => {
    const [first, second] = await context.openPair(options);
    return [withTurnLog(first), withTurnLog(second)] as const;
  };

  describe('capability: turnLog', () => {
    test('a recorded turn comes back exactly, with a growing sequence, oldest first', async () => {
      const [repository] = await openPair();
      const sessionId = randomId();
      const first = turn();
      const second = turn({ userId: null, messages: [{ role: 'tool', content: '{"ok":true}' }] });
      const a = await repository.recordTurn(sessionId, first);
      const b = await repository.recordTurn(sessionId, second);
      expect(a).toEqual({ turnId: first.turnId, sequence: a.sequence, duplicate: false });
      expect(b.sequence).toBeGreaterThan(a.sequence);
      const pending = await repository.pendingTurns(sessionId);
      expect(pending.map(({ recordedAt: _at, ...rest }) => rest)).toEqual([
        { ...first, sequence: a.sequence },
        { ...second, sequence: b.sequence },
      ]);
      for (const item of pending) expect(item.recordedAt).toBeInstanceOf(Date);
      expect(await repository.pendingTurns(sessionId, { limit: 1 })).toHaveLength(1);
      expect(await repository.pendingTurns(randomId('absent'))).toEqual([]);
    });

    test('recording one turn id on two connections at once stores it once', async () => {
      const [one, two] = await openPair();
      const sessionId = randomId();
      const same = turn();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, index) =>
          (index % 2 === 0 ? one : two).recordTurn(sessionId, same),
        ),
      );
      expect(results.filter((result) => !result.duplicate)).toHaveLength(1);
      expect(new Set(results.map((result) => result.sequence)).size).toBe(1);
      expect(await one.pendingTurns(sessionId)).toHaveLength(1);
    });

    test('past maxPendingTurns recording fails with BACKPRESSURE and stores nothing', async () => {
      const [repository, other] = await openPair({ maxPendingTurns: 3 });
      const sessionId = randomId();
      for (let index = 0; index < 3; index += 1) await repository.recordTurn(sessionId, turn());
      const error = await expectContextError(
        () => other.recordTurn(sessionId, turn()),
        'BACKPRESSURE',
        'a fourth pending turn',
      );
      expect(error).toMatchObject({ pending: 3, limit: 3 });
      expect(await repository.pendingTurns(sessionId)).toHaveLength(3);
      // A duplicate of a pending turn is still a no-op, not a refusal.
      const [first] = await repository.pendingTurns(sessionId, { limit: 1 });
      const again = await other.recordTurn(sessionId, first as TurnInput);
      expect(again.duplicate).toBe(true);
    });

    test('a fold removes exactly the folded turns in the save, and a folded id stays a duplicate', async () => {
      const [folder, recorder] = await openPair();
      const sessionId = randomId();
      const a = turn();
      const b = turn();
      await recorder.recordTurn(sessionId, a);
      await recorder.recordTurn(sessionId, b);
      const read = await folder.pendingTurns(sessionId);
      // A turn recorded after the folder read the log is not part of its fold.
      const late = turn();
      await recorder.recordTurn(sessionId, late);
      const snapshot = makeSnapshot({ sessionId });
      await folder.save(snapshot, {
        expectedVersion: null,
        foldedTurnIds: read.map((item) => item.turnId),
      });
      expect((await recorder.pendingTurns(sessionId)).map((item) => item.turnId)).toEqual([
        late.turnId,
      ]);
      const retried = await recorder.recordTurn(sessionId, a);
      expect(retried).toMatchObject({ turnId: a.turnId, duplicate: true });
      expect(retried.sequence).toBe(read[0]?.sequence);
      expect(await recorder.pendingTurns(sessionId)).toHaveLength(1);
    });

    test('a fold that loses the compare-and-set folds nothing', async () => {
      const [one, two] = await openPair();
      const sessionId = randomId();
      const first = await one.save(makeSnapshot({ sessionId }), { expectedVersion: null });
      const pendingTurn = turn();
      await one.recordTurn(sessionId, pendingTurn);
      const ids = [pendingTurn.turnId];
      await one.save(nextVersion(first), { expectedVersion: 1 });
      await expectContextError(
        () => two.save(nextVersion(first), { expectedVersion: 1, foldedTurnIds: ids }),
        'VERSION_CONFLICT',
        'a stale fold',
      );
      expect((await two.pendingTurns(sessionId)).map((item) => item.turnId)).toEqual(ids);
    });

    test('deleting a session drops its pending turns', async () => {
      const [repository, other] = await openPair();
      const sessionId = randomId();
      await repository.save(makeSnapshot({ sessionId }), { expectedVersion: null });
      await repository.recordTurn(sessionId, turn());
      expect(await other.delete(sessionId)).toBe(true);
      expect(await repository.pendingTurns(sessionId)).toEqual([]);
      // Turns recorded before any snapshot exists go too.
      const fresh = randomId();
      await repository.recordTurn(fresh, turn());
      expect(await other.delete(fresh)).toBe(false);
      expect(await repository.pendingTurns(fresh)).toEqual([]);
    });

    test('a delete on behalf of a user never drops turns others recorded for a session not created yet', async () => {
      const [repository, other] = await openPair();
      const sessionId = randomId();
      const alices = turn({ userId: randomId('alice') });
      await repository.recordTurn(sessionId, alices);
      expect(await other.delete(sessionId, { userId: randomId('impostor') })).toBe(false);
      await expectContextError(
        () => other.delete(sessionId, { expectedVersion: 1 }),
        'VERSION_CONFLICT',
        'a delete of version 1 of a session not created yet',
      );
      expect((await repository.pendingTurns(sessionId)).map((item) => item.turnId)).toEqual([
        alices.turnId,
      ]);
    });

    test('a lease has one holder across connections, is renewed by it, and lapses', async () => {
      const [one, two] = await openPair();
      const sessionId = randomId();
      const [alpha, beta] = [randomId('holder'), randomId('holder')];
      expect(await one.acquireLease(sessionId, { holder: alpha, ttlMs: 60_000 })).toBe(true);
      expect(await two.acquireLease(sessionId, { holder: beta, ttlMs: 60_000 })).toBe(false);
      expect(await one.acquireLease(sessionId, { holder: alpha, ttlMs: 600 })).toBe(true);
      await two.releaseLease(sessionId, beta);
      expect(await two.acquireLease(sessionId, { holder: beta, ttlMs: 60_000 })).toBe(false);
      await sleep(900);
      expect(await two.acquireLease(sessionId, { holder: beta, ttlMs: 60_000 })).toBe(true);
      await two.releaseLease(sessionId, beta);
      expect(await one.acquireLease(sessionId, { holder: alpha, ttlMs: 60_000 })).toBe(true);
    });

    test('two connections racing for a free lease: exactly one gets it', async () => {
      const [one, two] = await openPair();
      const sessionId = randomId();
      const holders = Array.from({ length: 10 }, () => randomId('holder'));
      const taken = await Promise.all(
        holders.map((holder, index) =>
          (index % 2 === 0 ? one : two).acquireLease(sessionId, { holder, ttlMs: 60_000 }),
        ),
      );
      expect(taken.filter(Boolean)).toHaveLength(1);
    });

    test('sessionsWithPendingTurns lists unleased sessions with old enough pending turns', async () => {
      const [repository, other] = await openPair();
      const [idle, leased, folded] = [randomId(), randomId(), randomId()];
      for (const sessionId of [idle, leased, folded]) {
        await repository.recordTurn(sessionId, turn());
      }
      await other.acquireLease(leased, { holder: randomId('holder'), ttlMs: 60_000 });
      const [pendingTurn] = await repository.pendingTurns(folded);
      await repository.save(makeSnapshot({ sessionId: folded }) as SessionContext, {
        expectedVersion: null,
        foldedTurnIds: [pendingTurn?.turnId as string],
      });
      const found = await other.sessionsWithPendingTurns({ limit: 1000 });
      expect(found).toContain(idle);
      expect(found).not.toContain(leased);
      expect(found).not.toContain(folded);
      const none = await other.sessionsWithPendingTurns({
        recordedBefore: new Date(Date.now() - 3_600_000),
        limit: 1000,
      });
      expect(none).not.toContain(idle);
    });

    test('invalid turns, turn ids and lease options are refused with INVALID_INPUT', async () => {
      const [repository] = await openPair();
      const sessionId = randomId();
      const invalid: Array<[string, () => Promise<unknown>]> = [
        ['an empty turn id', () => repository.recordTurn(sessionId, turn({ turnId: '' }))],
        ['no messages', () => repository.recordTurn(sessionId, turn({ messages: [] }))],
        [
          'a bad role',
          () =>
            repository.recordTurn(
              sessionId,
              turn({ messages: [{ role: 'robot', content: 'x' }] as unknown as Message[] }),
            ),
        ],
        ['a zero ttl', () => repository.acquireLease(sessionId, { holder: 'h', ttlMs: 0 })],
        [
          'a folded id listed twice',
          () =>
            repository.save(makeSnapshot({ sessionId }), {
              expectedVersion: null,
              foldedTurnIds: ['t', 't'],
            }),
        ],
      ];
      for (const [label, call] of invalid) await expectContextError(call, 'INVALID_INPUT', label);
      expect(await repository.pendingTurns(sessionId)).toEqual([]);
      expect(await repository.get(sessionId)).toBeNull();
    });
  });
}
