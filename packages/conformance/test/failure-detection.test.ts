import {
  type ContextRepository,
  createMemoryRepository,
  type SessionContext,
  VersionConflictError,
} from '@ctx/core';
import { cloneSnapshot } from '@ctx/core/adapter';
import { describe, expect, it } from 'vitest';
import { expectContextError, expectSameSnapshot } from '../src/assertions.js';
import { makeSnapshot, raceWrites, randomId, runReadModifyWriteLoops } from '../src/index.js';

/**
 * The classic broken compare-and-set: the version check and the write are two steps with a round
 * trip between them (as with SELECT then UPDATE outside a transaction), so concurrent writers all
 * pass the check.
 */
function createCheckThenWriteRepository(): ContextRepository {
  const rows = new Map<string, SessionContext>();
  const roundTrip = () => new Promise((resolve) => setTimeout(resolve, 1));
  const unsupported = () => Promise.reject(new Error('not needed by these tests'));
  return {
    async get(sessionId) {
      await roundTrip();
      const row = rows.get(sessionId);
      return row ? cloneSnapshot(row) : null;
    },
    async save(snapshot, options) {
      const currentVersion = rows.get(snapshot.sessionId)?.version ?? null;
      if (currentVersion !== options.expectedVersion) {
        throw new VersionConflictError({
          sessionId: snapshot.sessionId,
          expectedVersion: options.expectedVersion,
          currentVersion,
        });
      }
      await roundTrip();
      rows.set(snapshot.sessionId, cloneSnapshot(snapshot));
      return cloneSnapshot(snapshot);
    },
    delete: unsupported,
    list: unsupported,
    close: async () => {},
  };
}

describe('the suite detects broken repositories', () => {
  it('a non-atomic save lets several concurrent creators win', async () => {
    const sessionId = randomId('broken');
    const outcome = await raceWrites(
      [createCheckThenWriteRepository()],
      20,
      (index) => makeSnapshot({ sessionId, summary: `writer ${index}` }),
      null,
    );
    expect(outcome.winners.length).toBeGreaterThan(1);
  });

  it('a non-atomic save loses updates in read-modify-write loops', async () => {
    const repository = createCheckThenWriteRepository();
    const outcome = await runReadModifyWriteLoops([repository, repository], {
      sessionId: randomId('broken'),
      writesPerWriter: 10,
    });
    expect(outcome.failures).toEqual([]);
    const successes = outcome.successes.reduce((sum, count) => sum + count, 0);
    expect(outcome.missingMarks.length).toBeGreaterThan(0);
    expect(outcome.final?.version).toBeLessThan(successes);
  });

  it('the same helpers report a correct repository as clean', async () => {
    const repository = createMemoryRepository();
    const sessionId = randomId('sound');
    const race = await raceWrites(
      [repository],
      20,
      (index) => makeSnapshot({ sessionId, summary: `writer ${index}` }),
      null,
    );
    expect(race.winners).toHaveLength(1);
    expect(race.conflicts).toHaveLength(19);
    const loops = await runReadModifyWriteLoops([repository, repository], {
      sessionId: randomId('sound'),
      writesPerWriter: 10,
    });
    expect(loops.final?.version).toBe(20);
    expect(loops.missingMarks).toEqual([]);
  });

  it('snapshot comparison catches lost milliseconds and null turned into an empty list', () => {
    const saved = makeSnapshot({ plan: null });
    const truncated = {
      ...saved,
      updatedAt: new Date(saved.updatedAt.getTime() - (saved.updatedAt.getTime() % 1000)),
    };
    expect(() => expectSameSnapshot(truncated, saved)).toThrow(/updatedAt/);
    expect(() => expectSameSnapshot({ ...saved, plan: [] }, saved)).toThrow(/plan must be null/);
    const changed = {
      ...saved,
      summary: `${saved.summary.slice(0, 10)}?${saved.summary.slice(11)}`,
    };
    expect(() => expectSameSnapshot(changed, saved)).toThrow(/first difference at index 10/);
  });

  it('error checks insist on a ContextError with the right code', async () => {
    await expect(
      expectContextError(() => Promise.reject(new Error('raw driver error')), 'INVALID_INPUT'),
    ).rejects.toThrow(/must throw a ContextError/);
    await expect(expectContextError(() => Promise.resolve(null), 'CLOSED')).rejects.toThrow(
      /resolved/,
    );
    await expect(
      expectContextError(
        () =>
          Promise.reject(
            new VersionConflictError({ sessionId: 's', expectedVersion: 1, currentVersion: 2 }),
          ),
        'VERSION_CONFLICT',
      ),
    ).resolves.toBeInstanceOf(Error);
  });
});
