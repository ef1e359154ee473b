import {
  type ContextRepository,
  LIMITS,
  LIST_LIMITS,
  type SessionContext,
  type VersionConflictError,
} from '@ctx/core';
import { compareForList } from '@ctx/core/adapter';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  describeError,
  expectContextError,
  expectRawMatches,
  expectSameSnapshot,
  fail,
} from './assertions.js';
import { raceWrites, runReadModifyWriteLoops } from './concurrency.js';
import { describeFieldsGroup } from './fields-suite.js';
import { ALL_TRICKY_TEXT, makeLongText, TRICKY_TEXTS, truncateText } from './fixtures.js';
import type { RepositoryFactoryOptions, RepositoryHarness } from './harness.js';
import { describeIdentityGroups } from './identity-suite.js';
import { makeSnapshot, nextVersion, randomId, randomInt, sleep } from './random.js';
import { describeTurnLogGroup } from './turn-log-suite.js';

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_TTL_SLACK_MS = 250;
const TTL_MS = 1_000;
const HISTORY_LIMIT = 3;

/** Session ids that every repository must refuse with `INVALID_INPUT`. */
const INVALID_SESSION_IDS: ReadonlyArray<[label: string, id: string]> = [
  ['empty', ''],
  ['257 characters', 'x'.repeat(LIMITS.idMaxLength + 1)],
  ['a control character', 'abc\u0001def'],
  ['a newline', 'line\nbreak'],
];

function shuffle<T>(items: T[]): T[] {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index -= 1) {
    const other = randomInt(0, index + 1);
    [copy[index], copy[other]] = [copy[other] as T, copy[index] as T];
  }
  return copy;
}

function ids(items: SessionContext[]): string[] {
  return items.map((item) => item.sessionId);
}

/**
 * Registers the `ContextRepository` conformance suite: round trips, validation, compare-and-set,
 * concurrency, delete, list, close and timestamps, plus the TTL and history groups when the harness
 * declares those capabilities. Call it once, at the top level of a test file.
 *
 * @example
 * ```ts
 * // test/conformance.test.ts
 * import { describeContextRepository } from '@ctx/conformance';
 * import { createSqliteRepository } from '../src/index.js';
 *
 * describeContextRepository({
 *   name: 'sqlite (file)',
 *   createRepository: (options) => createSqliteRepository({ filename: file, ...options }),
 * });
 * ```
 */
export function describeContextRepository(harness: RepositoryHarness): void {
  const timeout = harness.testTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const ttlSlackMs = harness.ttlSlackMs ?? DEFAULT_TTL_SLACK_MS;
  const opened: ContextRepository[] = [];

  const open = async (options?: RepositoryFactoryOptions): Promise<ContextRepository> => {
    const repository = await harness.createRepository(options);
    opened.push(repository);
    return repository;
  };
  const openSecond = async (options?: RepositoryFactoryOptions): Promise<ContextRepository> => {
    if (!harness.createSecondConnection) throw new Error('createSecondConnection is not given');
    const repository = await harness.createSecondConnection(options);
    opened.push(repository);
    return repository;
  };

  /** Two repositories on independent connections, or the same one twice without a second. */
  const openPair = async (
    options?: RepositoryFactoryOptions,
  ): Promise<[ContextRepository, ContextRepository]> => {
    const first = await open(options);
    return [first, harness.createSecondConnection ? await openSecond(options) : first];
  };

  /** Saves `snapshot` as a first write and checks what came back. */
  const create = async (
    repository: ContextRepository,
    snapshot: SessionContext,
  ): Promise<SessionContext> => {
    const saved = await repository.save(snapshot, { expectedVersion: null });
    expectSameSnapshot(saved, snapshot, 'save() result');
    return saved;
  };

  /** Checks the stored state of a session through the repository and, if given, out of band. */
  const expectStored = async (
    repository: ContextRepository,
    expected: SessionContext | null,
    sessionId = expected?.sessionId,
  ): Promise<void> => {
    if (sessionId === undefined) throw new Error('expectStored needs a session id');
    const stored = await repository.get(sessionId);
    if (expected === null) {
      expect(stored, `session ${sessionId} must be absent`).toBeNull();
    } else {
      expectSameSnapshot(stored, expected, 'get() result');
    }
    if (harness.readRaw) {
      const raw = await harness.readRaw(sessionId);
      if (expected === null) expect(raw, `readRaw(${sessionId}) must find no row`).toBeNull();
      else expectRawMatches(raw, expected);
    }
  };

  const test = (name: string, body: () => Promise<void>) => it(name, body, timeout);

  describe(`ContextRepository conformance: ${harness.name}`, () => {
    afterEach(async () => {
      const repositories = opened.splice(0);
      for (const repository of repositories) await repository.close();
    });

    afterAll(async () => {
      await harness.teardown?.();
    });

    describe('round trip', () => {
      test('get returns null for a session that was never written', async () => {
        const repository = await open();
        expect(await repository.get(randomId('absent'))).toBeNull();
      });

      test('saves and reads back every field unchanged', async () => {
        const repository = await open();
        const plan = Object.values(TRICKY_TEXTS);
        const snapshot = makeSnapshot({
          userId: `${randomId('user')}-ユーザー-🙂`,
          summary: ALL_TRICKY_TEXT,
          goal: `${TRICKY_TEXTS.rtl} ${TRICKY_TEXTS.combining}`,
          plan,
          progress: [plan[0] as string, plan[3] as string],
        });
        await create(repository, snapshot);
        await expectStored(repository, snapshot);
      });

      test('each kind of tricky text round-trips on its own', async () => {
        const repository = await open();
        for (const [kind, text] of Object.entries(TRICKY_TEXTS)) {
          const snapshot = makeSnapshot({
            sessionId: randomId(`text-${kind}`),
            summary: text,
            goal: text,
            plan: [text],
            progress: [text],
          });
          await create(repository, snapshot);
          await expectStored(repository, snapshot);
        }
      });

      test('a 100 KB summary round-trips', async () => {
        const repository = await open();
        const snapshot = makeSnapshot({ summary: makeLongText(100 * 1024) });
        await create(repository, snapshot);
        await expectStored(repository, snapshot);
      });

      test('the largest valid snapshot round-trips (every limit reached)', async () => {
        const repository = await open();
        const sessionId = randomId('limits');
        const steps = Array.from({ length: LIMITS.planMaxSteps }, (_, index) => {
          const label = `step ${index + 1}: `;
          return label + makeLongText(LIMITS.stepMaxLength - label.length);
        });
        const snapshot = makeSnapshot({
          sessionId: sessionId + 's'.repeat(LIMITS.idMaxLength - sessionId.length),
          userId: 'u'.repeat(LIMITS.idMaxLength),
          summary: makeLongText(LIMITS.summaryMaxLength),
          goal: makeLongText(LIMITS.goalMaxLength),
          plan: steps,
          progress: steps.slice(0, 50),
        });
        await create(repository, snapshot);
        await expectStored(repository, snapshot);
      });

      test('empty strings and empty arrays stay distinct from null', async () => {
        const repository = await open();
        const empty = makeSnapshot({ summary: '', goal: '', plan: [], progress: [] });
        const nulls = makeSnapshot({ userId: null, goal: null, plan: null, progress: null });
        const blanks = makeSnapshot({ summary: ' ', goal: ' ', plan: ['', ' '], progress: [''] });
        const mixed = makeSnapshot({ goal: 'Ship v1', plan: ['Design', 'Build'], progress: [] });
        for (const snapshot of [empty, nulls, blanks, mixed]) {
          await create(repository, snapshot);
          await expectStored(repository, snapshot);
        }
      });

      test('session ids with unicode, punctuation and the maximum length work', async () => {
        const repository = await open();
        const base = randomId('id');
        const sessionIds = [
          `${base}-会話-🙂-مرحبا`,
          `${base}:*?[]{}()/\\%_'" |&$#@!^~`,
          truncateText(`${base}-${'x'.repeat(LIMITS.idMaxLength)}`, LIMITS.idMaxLength),
          truncateText(`${base}-${'🙂'.repeat(LIMITS.idMaxLength)}`, LIMITS.idMaxLength),
        ];
        for (const sessionId of sessionIds) {
          const snapshot = makeSnapshot({ sessionId });
          await create(repository, snapshot);
          await expectStored(repository, snapshot);
          expect(await repository.delete(sessionId)).toBe(true);
          await expectStored(repository, null, sessionId);
        }
      });

      test('returned objects are copies: mutating them changes nothing stored', async () => {
        const repository = await open();
        const input = makeSnapshot({ goal: 'Ship v1', plan: ['Design', 'Build'], progress: [] });
        const original = structuredClone(input);
        const saved = await create(repository, input);
        expect(saved, 'save() must not return the object it was given').not.toBe(input);

        input.summary = 'mutated input';
        input.plan?.push('mutated input step');
        input.createdAt.setTime(0);
        await expectStored(repository, original);

        saved.summary = 'mutated result';
        saved.plan?.push('mutated result step');
        saved.progress?.push('Design');
        saved.updatedAt.setTime(0);
        await expectStored(repository, original);

        const read = await repository.get(original.sessionId);
        if (!read) fail('get() lost the session');
        read.plan?.splice(0);
        read.progress?.push('Build');
        read.createdAt.setTime(1);
        read.updatedAt.setTime(1);
        read.goal = null;
        await expectStored(repository, original);

        const page = await repository.list({ userId: original.userId as string });
        const listed = page.items[0];
        if (!listed) fail('list() did not return the session');
        listed.plan?.push('mutated listed step');
        listed.updatedAt.setTime(2);
        await expectStored(repository, original);
      });
    });

    describe('validation', () => {
      test('invalid session ids are refused with INVALID_INPUT by get, save and delete', async () => {
        const repository = await open();
        for (const [label, sessionId] of INVALID_SESSION_IDS) {
          await expectContextError(
            () => repository.get(sessionId),
            'INVALID_INPUT',
            `get() with ${label} id`,
          );
          await expectContextError(
            () => repository.save(makeSnapshot({ sessionId }), { expectedVersion: null }),
            'INVALID_INPUT',
            `save() with ${label} id`,
          );
          await expectContextError(
            () => repository.delete(sessionId),
            'INVALID_INPUT',
            `delete() with ${label} id`,
          );
        }
      });

      test('a version that is not expectedVersion + 1 is refused and nothing is stored', async () => {
        const repository = await open();
        const absent = makeSnapshot({ version: 2 });
        await expectContextError(
          () => repository.save(absent, { expectedVersion: null }),
          'INVALID_INPUT',
          'save(version 2, expectedVersion null)',
        );
        await expectStored(repository, null, absent.sessionId);

        const first = await create(repository, makeSnapshot());
        for (const [version, expectedVersion] of [
          [3, 1],
          [1, 1],
          [2, 2],
        ] as const) {
          await expectContextError(
            () => repository.save(nextVersion(first, { version }), { expectedVersion }),
            'INVALID_INPUT',
            `save(version ${version}, expectedVersion ${expectedVersion})`,
          );
        }
        for (const expectedVersion of [0, -1, 1.5]) {
          await expectContextError(
            () =>
              repository.save(nextVersion(first, { version: 2 }), {
                expectedVersion,
              }),
            'INVALID_INPUT',
            `save(expectedVersion ${expectedVersion})`,
          );
        }
        await expectStored(repository, first);
      });

      test('invalid content is refused with INVALID_INPUT and nothing is stored', async () => {
        const repository = await open();
        const invalid: Array<[string, Partial<SessionContext>]> = [
          ['a summary over the limit', { summary: 'x'.repeat(LIMITS.summaryMaxLength + 1) }],
          ['a summary containing U+0000', { summary: 'before\u0000after' }],
          ['a summary with a lone surrogate', { summary: 'broken \ud83d pair' }],
          ['a goal over the limit', { goal: 'g'.repeat(LIMITS.goalMaxLength + 1) }],
          ['a goal containing U+0000', { goal: '\u0000' }],
          ['too many plan steps', { plan: Array(LIMITS.planMaxSteps + 1).fill('step') }],
          ['a plan step over the limit', { plan: ['s'.repeat(LIMITS.stepMaxLength + 1)] }],
          ['a progress step containing U+0000', { progress: ['done\u0000'] }],
          ['an empty user id', { userId: '' }],
          ['a user id with a control character', { userId: 'user\u0007' }],
          ['an invalid createdAt', { createdAt: new Date(Number.NaN) }],
          ['an invalid updatedAt', { updatedAt: new Date(Number.NaN) }],
        ];
        for (const [label, overrides] of invalid) {
          const snapshot = makeSnapshot(overrides);
          await expectContextError(
            () => repository.save(snapshot, { expectedVersion: null }),
            'INVALID_INPUT',
            `save() with ${label}`,
          );
          await expectStored(repository, null, snapshot.sessionId);
        }

        const stored = await create(repository, makeSnapshot());
        await expectContextError(
          () =>
            repository.save(nextVersion(stored, { summary: 'a\u0000b' }), { expectedVersion: 1 }),
          'INVALID_INPUT',
          'an update with a summary containing U+0000',
        );
        await expectStored(repository, stored);
      });
    });

    describe('compare-and-set', () => {
      test('create, conflicting create, update, stale update', async () => {
        const repository = await open();
        const first = makeSnapshot();
        const created = await create(repository, first);
        expect(created.version).toBe(1);

        const again = await expectContextError(
          () =>
            repository.save(makeSnapshot({ sessionId: first.sessionId }), {
              expectedVersion: null,
            }),
          'VERSION_CONFLICT',
          'a second create',
        );
        expect((again as VersionConflictError).currentVersion).toBe(1);
        expect((again as VersionConflictError).expectedVersion).toBeNull();
        await expectStored(repository, first);

        const second = nextVersion(first, { summary: 'Second write.' });
        const updated = await repository.save(second, { expectedVersion: 1 });
        expectSameSnapshot(updated, second, 'save() result');
        expect(updated.version).toBe(2);
        await expectStored(repository, second);

        const stale = await expectContextError(
          () =>
            repository.save(nextVersion(first, { summary: 'Stale write.' }), {
              expectedVersion: 1,
            }),
          'VERSION_CONFLICT',
          'an update with a stale version',
        );
        expect(stale).toBeInstanceOf(Error);
        expect((stale as VersionConflictError).currentVersion).toBe(2);
        expect((stale as VersionConflictError).expectedVersion).toBe(1);
        await expectStored(repository, second);
      });

      test('an update of an absent session conflicts with currentVersion null', async () => {
        const repository = await open();
        const snapshot = makeSnapshot({ version: 4 });
        const error = await expectContextError(
          () => repository.save(snapshot, { expectedVersion: 3 }),
          'VERSION_CONFLICT',
          'save(expectedVersion 3) of an absent session',
        );
        expect((error as VersionConflictError).currentVersion).toBeNull();
        expect((error as VersionConflictError).expectedVersion).toBe(3);
        await expectStored(repository, null, snapshot.sessionId);
      });

      test('versions keep counting across many updates', async () => {
        const repository = await open();
        let current = await create(repository, makeSnapshot());
        for (let version = 2; version <= 12; version += 1) {
          const next = nextVersion(current, { summary: `Write ${version}.` });
          current = await repository.save(next, { expectedVersion: version - 1 });
          expect(current.version).toBe(version);
        }
        await expectStored(repository, current);
      });
    });

    describe('concurrency', () => {
      test('20 concurrent first writes: exactly one succeeds, the rest conflict', async () => {
        const repository = await open();
        const sessionId = randomId('race');
        const outcome = await raceWrites(
          [repository],
          20,
          (index) => makeSnapshot({ sessionId, summary: `writer ${index}` }),
          null,
        );
        expect(outcome.failures.map(describeError), 'errors other than conflicts').toEqual([]);
        expect(outcome.winners, 'successful creates').toHaveLength(1);
        expect(outcome.conflicts, 'VERSION_CONFLICT errors').toHaveLength(19);
        for (const conflict of outcome.conflicts) expect(conflict.currentVersion).toBe(1);
        const stored = await repository.get(sessionId);
        expect(stored?.summary).toBe(outcome.winners[0]?.summary);
        expect(stored?.version).toBe(1);
      });

      test('20 concurrent updates of one version: exactly one succeeds', async () => {
        const repository = await open();
        const first = await create(repository, makeSnapshot());
        const outcome = await raceWrites(
          [repository],
          20,
          (index) => nextVersion(first, { summary: `updater ${index}` }),
          1,
        );
        expect(outcome.failures.map(describeError), 'errors other than conflicts').toEqual([]);
        expect(outcome.winners, 'successful updates').toHaveLength(1);
        expect(outcome.conflicts, 'VERSION_CONFLICT errors').toHaveLength(19);
        for (const conflict of outcome.conflicts) expect(conflict.currentVersion).toBe(2);
        const stored = await repository.get(first.sessionId);
        expect(stored?.summary).toBe(outcome.winners[0]?.summary);
        expect(stored?.version).toBe(2);
      });

      test('two read-modify-write loops on one repository lose no update', async () => {
        const repository = await open();
        const outcome = await runReadModifyWriteLoops([repository, repository], {
          sessionId: randomId('rmw'),
          writesPerWriter: 25,
        });
        expect(outcome.failures.map(describeError), 'errors other than conflicts').toEqual([]);
        expect(outcome.successes).toEqual([25, 25]);
        expect(outcome.final?.version, 'final version = successful writes').toBe(50);
        expect(outcome.missingMarks, 'lost updates').toEqual([]);
      });

      if (harness.createSecondConnection) {
        describe('across two connections', () => {
          test('a write on one connection is read on the other', async () => {
            const one = await open();
            const two = await openSecond();
            const snapshot = await create(one, makeSnapshot({ summary: ALL_TRICKY_TEXT }));
            expectSameSnapshot(await two.get(snapshot.sessionId), snapshot, 'second connection');
            const next = nextVersion(snapshot, { summary: 'Written on the second connection.' });
            await two.save(next, { expectedVersion: 1 });
            expectSameSnapshot(await one.get(snapshot.sessionId), next, 'first connection');
            expect(await two.delete(snapshot.sessionId)).toBe(true);
            expect(await one.get(snapshot.sessionId)).toBeNull();
          });

          test('20 concurrent first writes split over two connections: exactly one wins', async () => {
            const repositories = [await open(), await openSecond()];
            const sessionId = randomId('race2');
            const outcome = await raceWrites(
              repositories,
              20,
              (index) => makeSnapshot({ sessionId, summary: `writer ${index}` }),
              null,
            );
            expect(outcome.failures.map(describeError), 'errors other than conflicts').toEqual([]);
            expect(outcome.winners, 'successful creates').toHaveLength(1);
            expect(outcome.conflicts, 'VERSION_CONFLICT errors').toHaveLength(19);
            for (const conflict of outcome.conflicts) expect(conflict.currentVersion).toBe(1);
          });

          test('read-modify-write loops on two connections lose no update', async () => {
            const repositories = [await open(), await openSecond()];
            const outcome = await runReadModifyWriteLoops(repositories, {
              sessionId: randomId('rmw2'),
              writesPerWriter: 25,
            });
            expect(outcome.failures.map(describeError), 'errors other than conflicts').toEqual([]);
            expect(outcome.successes).toEqual([25, 25]);
            expect(outcome.final?.version, 'final version = successful writes').toBe(50);
            expect(outcome.missingMarks, 'lost updates').toEqual([]);
          });
        });
      }
    });

    describe('delete', () => {
      test('delete returns true once, then false; the session is gone and starts over', async () => {
        const repository = await open();
        const first = await create(repository, makeSnapshot());
        const second = nextVersion(first);
        await repository.save(second, { expectedVersion: 1 });
        const neighbour = await create(repository, makeSnapshot({ userId: first.userId }));

        expect(await repository.delete(first.sessionId)).toBe(true);
        expect(await repository.delete(first.sessionId)).toBe(false);
        await expectStored(repository, null, first.sessionId);
        await expectStored(repository, neighbour);

        const page = await repository.list({ userId: first.userId as string });
        expect(ids(page.items)).toEqual([neighbour.sessionId]);

        await expectContextError(
          () => repository.save(nextVersion(second), { expectedVersion: 2 }),
          'VERSION_CONFLICT',
          'an update of a deleted session',
        );
        const reborn = makeSnapshot({ sessionId: first.sessionId, summary: 'Started over.' });
        const saved = await repository.save(reborn, { expectedVersion: null });
        expect(saved.version, 'a re-created session continues after the deleted version').toBe(3);
        await expectStored(repository, { ...reborn, version: 3 });
      });

      test('delete of a session that never existed returns false', async () => {
        const repository = await open();
        expect(await repository.delete(randomId('absent'))).toBe(false);
      });
    });

    describeIdentityGroups({
      test,
      open,
      openPair,
      expectStored,
      ttl: harness.capabilities?.ttl ? { ttlMs: TTL_MS, slackMs: ttlSlackMs } : null,
    });

    if (harness.capabilities?.turnLog) {
      describeTurnLogGroup({
        test,
        openPair,
      });
    }

    if (harness.capabilities?.fields) {
      describeFieldsGroup({
        test,
        open,
        openPair,
        expectStored,
        history: harness.capabilities.history === true,
      });
    }

    describe('list', () => {
      test('filters by userId and returns complete snapshots', async () => {
        const repository = await open();
        const alice = randomId('alice');
        const bob = randomId('bob');
        const alices = [
          makeSnapshot({ userId: alice, goal: 'Goal', plan: ['a', 'b'], progress: ['a'] }),
          makeSnapshot({ userId: alice, summary: ALL_TRICKY_TEXT }),
          makeSnapshot({ userId: alice, summary: '' }),
        ];
        const bobs = [makeSnapshot({ userId: bob }), makeSnapshot({ userId: bob })];
        for (const snapshot of [...alices, ...bobs, makeSnapshot({ userId: null })]) {
          await create(repository, snapshot);
        }
        const page = await repository.list({ userId: alice });
        const expected = [...alices].sort(compareForList);
        expect(ids(page.items)).toEqual(ids(expected));
        expected.forEach((snapshot, index) => {
          expectSameSnapshot(page.items[index], snapshot, `list item ${index}`);
        });
        expect(page.nextCursor).toBeNull();
        expect(ids((await repository.list({ userId: bob })).items).sort()).toEqual(
          ids(bobs).sort(),
        );
        expect((await repository.list({ userId: randomId('nobody') })).items).toEqual([]);
      });

      test('paginates 12 sessions by 5: three pages, newest first, nothing lost or repeated', async () => {
        const repository = await open();
        const userId = randomId('pager');
        const base = Date.UTC(2020, 5, 1);
        const snapshots = Array.from({ length: 12 }, (_, index) =>
          makeSnapshot({
            userId,
            createdAt: new Date(base),
            updatedAt: new Date(base + index * 60_000 + randomInt(0, 1000)),
          }),
        );
        for (const snapshot of shuffle(snapshots)) await create(repository, snapshot);

        const pages: SessionContext[][] = [];
        let cursor: string | null = null;
        do {
          const page = await repository.list({ userId, limit: 5, cursor });
          pages.push(page.items);
          cursor = page.nextCursor;
          if (cursor !== null) expect(typeof cursor).toBe('string');
        } while (cursor !== null && pages.length < 10);
        expect(pages.map((page) => page.length)).toEqual([5, 5, 2]);
        const expected = [...snapshots].sort(compareForList);
        expect(ids(pages.flat())).toEqual(ids(expected));
      });

      test('a page that ends exactly at the last session has nextCursor null', async () => {
        const repository = await open();
        const userId = randomId('exact');
        for (let index = 0; index < 4; index += 1) {
          await create(repository, makeSnapshot({ userId }));
        }
        const page = await repository.list({ userId, limit: 4 });
        expect(page.items).toHaveLength(4);
        expect(page.nextCursor).toBeNull();
        const first = await repository.list({ userId, limit: 2 });
        expect(first.nextCursor).not.toBeNull();
        const second = await repository.list({ userId, limit: 2, cursor: first.nextCursor });
        expect(second.items).toHaveLength(2);
        expect(second.nextCursor).toBeNull();
      });

      test('sessions sharing one updatedAt are ordered by sessionId descending, stably across pages', async () => {
        const repository = await open();
        const userId = randomId('ties');
        const prefix = randomId('tie');
        const tie = new Date(Date.UTC(2022, 2, 3, 4, 5, 6, 789));
        // Mixed case and punctuation: the order is by UTF-16 code unit, not by a locale collation.
        const suffixes = ['A', 'B', 'a', 'b', 'Z', 'z', '0', '9', '_', '-', '~'];
        const tied = suffixes.map((suffix) =>
          makeSnapshot({ sessionId: `${prefix}-${suffix}`, userId, updatedAt: tie }),
        );
        const later = makeSnapshot({ userId, updatedAt: new Date(tie.getTime() + 1) });
        const earlier = makeSnapshot({ userId, updatedAt: new Date(tie.getTime() - 1) });
        const all = [...tied, later, earlier];
        for (const snapshot of shuffle(all)) await create(repository, snapshot);

        const expected = [...all].sort(compareForList);
        expect(expected[0]?.sessionId).toBe(later.sessionId);
        expect(ids((await repository.list({ userId, limit: 100 })).items)).toEqual(ids(expected));
        for (const limit of [1, 3, 4]) {
          const seen: SessionContext[] = [];
          let cursor: string | null = null;
          for (let pages = 0; pages < 20; pages += 1) {
            const page = await repository.list({ userId, limit, cursor });
            seen.push(...page.items);
            cursor = page.nextCursor;
            if (cursor === null) break;
          }
          expect(ids(seen), `pages of ${limit}`).toEqual(ids(expected));
        }
      });

      test('an updated session is listed once, at its new position and version', async () => {
        const repository = await open();
        const userId = randomId('moves');
        const base = Date.UTC(2021, 0, 1);
        const older = await create(
          repository,
          makeSnapshot({ userId, updatedAt: new Date(base + 1_000) }),
        );
        const newer = await create(
          repository,
          makeSnapshot({ userId, updatedAt: new Date(base + 2_000) }),
        );
        expect(ids((await repository.list({ userId })).items)).toEqual([
          newer.sessionId,
          older.sessionId,
        ]);
        const moved = nextVersion(older, { updatedAt: new Date(base + 3_000) });
        await repository.save(moved, { expectedVersion: 1 });
        const page = await repository.list({ userId });
        expect(ids(page.items)).toEqual([older.sessionId, newer.sessionId]);
        expectSameSnapshot(page.items[0], moved, 'moved list item');
      });

      test('without a limit, pages hold 50 sessions', async () => {
        const repository = await open();
        const userId = randomId('default');
        for (let index = 0; index < LIST_LIMITS.defaultLimit + 1; index += 1) {
          await create(repository, makeSnapshot({ userId }));
        }
        const first = await repository.list({ userId });
        expect(first.items).toHaveLength(LIST_LIMITS.defaultLimit);
        expect(first.nextCursor).not.toBeNull();
        const second = await repository.list({ userId, cursor: first.nextCursor });
        expect(second.items).toHaveLength(1);
        expect(second.nextCursor).toBeNull();
      });

      test('invalid cursors, limits and user ids are refused with INVALID_INPUT', async () => {
        const repository = await open();
        for (const cursor of ['not a cursor', '!!!', 'eyJmb28iOjF9', '   ']) {
          await expectContextError(
            () => repository.list({ cursor }),
            'INVALID_INPUT',
            `list() with cursor ${JSON.stringify(cursor)}`,
          );
        }
        for (const limit of [0, -1, LIST_LIMITS.maxLimit + 1, 1.5, Number.NaN]) {
          await expectContextError(
            () => repository.list({ limit }),
            'INVALID_INPUT',
            `list() with limit ${limit}`,
          );
        }
        for (const userId of ['', 'user\u0000', 'x'.repeat(LIMITS.idMaxLength + 1)]) {
          await expectContextError(
            () => repository.list({ userId }),
            'INVALID_INPUT',
            `list() with userId ${JSON.stringify(userId.slice(0, 20))}`,
          );
        }
      });

      test('without userId, lists every owner in order', async () => {
        const repository = await open();
        // Far in the future, so these sort before whatever else shares the backend.
        const base = Date.UTC(2999, 0, 1) + randomInt(0, 86_400_000);
        const mine = [
          makeSnapshot({ userId: null, updatedAt: new Date(base + 3) }),
          makeSnapshot({ userId: randomId('owner'), updatedAt: new Date(base + 2) }),
          makeSnapshot({ userId: null, updatedAt: new Date(base + 1) }),
        ];
        try {
          for (const snapshot of mine) await create(repository, snapshot);
          const wanted = new Set(ids(mine));
          const seen: SessionContext[] = [];
          let cursor: string | null = null;
          for (let pages = 0; pages < 50 && wanted.size > 0; pages += 1) {
            const page = await repository.list({ limit: 100, cursor });
            expect(page.items.length).toBeLessThanOrEqual(100);
            for (const item of page.items) wanted.delete(item.sessionId);
            seen.push(...page.items);
            cursor = page.nextCursor;
            if (cursor === null) break;
          }
          expect([...wanted], 'sessions missing from list()').toEqual([]);
          for (let index = 1; index < seen.length; index += 1) {
            expect(
              compareForList(seen[index - 1] as SessionContext, seen[index] as SessionContext),
              `list order at item ${index}`,
            ).toBeLessThan(0);
          }
          const ours = seen.filter((item) => ids(mine).includes(item.sessionId));
          expect(ids(ours)).toEqual(ids(mine));
          const limited = await repository.list({ limit: 2 });
          expect(limited.items.length).toBeLessThanOrEqual(2);
        } finally {
          for (const snapshot of mine) await repository.delete(snapshot.sessionId);
        }
      });
    });

    describe('close', () => {
      test('close is idempotent and every later call throws CLOSED', async () => {
        const repository = await open();
        const stored = await create(repository, makeSnapshot());
        await repository.close();
        await repository.close();
        await Promise.all([repository.close(), repository.close()]);
        const calls: Array<[string, () => Promise<unknown>]> = [
          ['get', () => repository.get(stored.sessionId)],
          ['save', () => repository.save(makeSnapshot(), { expectedVersion: null })],
          ['delete', () => repository.delete(stored.sessionId)],
          ['list', () => repository.list()],
        ];
        if (repository.purgeExpired) {
          const purge = repository.purgeExpired.bind(repository);
          calls.push(['purgeExpired', () => purge()]);
        }
        if (repository.history) {
          const history = repository.history.bind(repository);
          calls.push(['history', () => history(stored.sessionId)]);
        }
        for (const [name, call] of calls) {
          await expectContextError(call, 'CLOSED', `${name}() after close()`);
        }
      });

      test('closing one repository leaves another one working', async () => {
        const first = await open();
        const second = await open();
        await first.close();
        const snapshot = makeSnapshot();
        await create(second, snapshot);
        await expectStored(second, snapshot);
      });
    });

    describe('timestamps', () => {
      test('timestamps are stored exactly as given, to the millisecond', async () => {
        const repository = await open();
        const pairs: Array<[string, string]> = [
          ['2001-02-03T04:05:06.789Z', '2001-02-03T04:05:06.790Z'],
          ['1999-12-31T23:59:59.999Z', '2000-01-01T00:00:00.001Z'],
          ['2038-01-19T03:14:08.001Z', '2100-02-28T12:00:00.500Z'],
          ['2024-02-29T23:59:59.999Z', '2024-02-29T23:59:59.999Z'],
        ];
        for (const [createdAt, updatedAt] of pairs) {
          const snapshot = makeSnapshot({
            createdAt: new Date(createdAt),
            updatedAt: new Date(updatedAt),
          });
          await create(repository, snapshot);
          await expectStored(repository, snapshot);
        }
      });

      test('an update can keep createdAt and move updatedAt', async () => {
        const repository = await open();
        const first = await create(repository, makeSnapshot());
        const second = nextVersion(first, {
          updatedAt: new Date(first.updatedAt.getTime() + 123_457),
        });
        await repository.save(second, { expectedVersion: 1 });
        await expectStored(repository, second);
        expect((await repository.get(first.sessionId))?.createdAt.getTime()).toBe(
          first.createdAt.getTime(),
        );
      });
    });

    if (harness.capabilities?.ttl) {
      describe('capability: ttl', () => {
        const openTtl = async () => {
          const repository = await open({ ttlMs: TTL_MS });
          expect(
            repository.capabilities?.ttl,
            'createRepository({ ttlMs }) must return a repository whose capabilities.ttl is true',
          ).toBe(true);
          expect(typeof repository.purgeExpired, 'purgeExpired() must exist').toBe('function');
          return repository;
        };

        test('an expired session is absent: get, list and delete miss it, a create succeeds', async () => {
          const repository = await openTtl();
          const snapshot = makeSnapshot();
          await create(repository, snapshot);
          expectSameSnapshot(await repository.get(snapshot.sessionId), snapshot);
          const userId = snapshot.userId as string;
          expect(ids((await repository.list({ userId })).items)).toEqual([snapshot.sessionId]);

          await sleep(TTL_MS + ttlSlackMs);
          expect(await repository.get(snapshot.sessionId), 'get() after expiry').toBeNull();
          expect((await repository.list({ userId })).items, 'list() after expiry').toEqual([]);
          const conflict = await expectContextError(
            () => repository.save(nextVersion(snapshot), { expectedVersion: 1 }),
            'VERSION_CONFLICT',
            'an update of an expired session',
          );
          expect((conflict as VersionConflictError).currentVersion).toBeNull();
          expect(await repository.delete(snapshot.sessionId), 'delete() after expiry').toBe(false);

          const again = makeSnapshot({ sessionId: snapshot.sessionId, summary: 'Again.' });
          const saved = await repository.save(again, { expectedVersion: null });
          expect(saved.version, 'a session re-created after expiry continues its versions').toBe(2);
          expectSameSnapshot(await repository.get(snapshot.sessionId), { ...again, version: 2 });
        });

        test('a write refreshes the expiry', async () => {
          // A longer TTL than the other tests: every check has half a second of slack on each
          // side, so a loaded machine's late timers cannot flip the outcome.
          const ttlMs = TTL_MS * 2;
          const repository = await open({ ttlMs });
          const first = await create(repository, makeSnapshot());
          await sleep(ttlMs * 0.5);
          const second = nextVersion(first);
          await repository.save(second, { expectedVersion: 1 });
          await sleep(ttlMs * 0.75);
          expectSameSnapshot(
            await repository.get(first.sessionId),
            second,
            'a session written again before it expired',
          );
          await sleep(ttlMs * 0.25 + ttlSlackMs + 500);
          expect(await repository.get(first.sessionId)).toBeNull();
        });

        test('purgeExpired removes expired sessions and keeps live ones', async () => {
          const repository = await openTtl();
          const expired = [makeSnapshot(), makeSnapshot()];
          for (const snapshot of expired) await create(repository, snapshot);
          await sleep(TTL_MS + ttlSlackMs);
          const live = await create(repository, makeSnapshot());

          const purged = await repository.purgeExpired?.();
          expect(Number.isInteger(purged), 'purgeExpired() returns a count').toBe(true);
          expect(purged, 'purgeExpired() counts the sessions it removed').toBeGreaterThanOrEqual(
            expired.length,
          );
          for (const snapshot of expired) {
            await expectStored(repository, null, snapshot.sessionId);
          }
          await expectStored(repository, live);
          expect(Number.isInteger(await repository.purgeExpired?.())).toBe(true);
        });
      });
    }

    if (harness.capabilities?.history) {
      describe('capability: history', () => {
        const openHistory = async () => {
          const repository = await open({ historyLimit: HISTORY_LIMIT });
          expect(
            repository.capabilities?.history,
            'createRepository({ historyLimit }) must return a repository whose capabilities.history is true',
          ).toBe(true);
          expect(typeof repository.history, 'history() must exist').toBe('function');
          return repository;
        };
        const historyOf = (
          repository: ContextRepository,
          sessionId: string,
          options?: { limit?: number },
        ) => (repository.history as NonNullable<ContextRepository['history']>)(sessionId, options);

        const writeFive = async (repository: ContextRepository) => {
          const written = [await create(repository, makeSnapshot({ summary: 'v1', plan: [] }))];
          for (let version = 2; version <= 5; version += 1) {
            const previous = written[written.length - 1] as SessionContext;
            const next = nextVersion(previous, {
              summary: `v${version} ${TRICKY_TEXTS.emoji}`,
              plan: [...(previous.plan ?? []), `step ${version}`],
            });
            written.push(await repository.save(next, { expectedVersion: version - 1 }));
          }
          return written;
        };

        test('keeps the newest N versions, newest first, as full snapshots', async () => {
          const repository = await openHistory();
          const written = await writeFive(repository);
          const sessionId = (written[0] as SessionContext).sessionId;
          const history = await historyOf(repository, sessionId);
          expect(history.map((item) => item.version)).toEqual([5, 4, 3]);
          history.forEach((item, index) => {
            expectSameSnapshot(item, written[4 - index] as SessionContext, `history[${index}]`);
          });
          const two = await historyOf(repository, sessionId, { limit: 2 });
          expect(two.map((item) => item.version)).toEqual([5, 4]);
          const many = await historyOf(repository, sessionId, { limit: 100 });
          expect(many.map((item) => item.version)).toEqual([5, 4, 3]);
        });

        test('a refused save adds nothing to the history', async () => {
          const repository = await openHistory();
          const written = await writeFive(repository);
          const last = written[4] as SessionContext;
          const stale = nextVersion(written[3] as SessionContext, { summary: 'stale' });
          await expectContextError(
            () => repository.save(stale, { expectedVersion: 4 }),
            'VERSION_CONFLICT',
            'a stale save',
          );
          const history = await historyOf(repository, last.sessionId);
          expect(history.map((item) => item.version)).toEqual([5, 4, 3]);
          expectSameSnapshot(history[0], last, 'history[0]');
        });

        test('delete empties the history; a new session starts a new one', async () => {
          const repository = await openHistory();
          const written = await writeFive(repository);
          const sessionId = (written[0] as SessionContext).sessionId;
          expect(await repository.delete(sessionId)).toBe(true);
          expect(await historyOf(repository, sessionId)).toEqual([]);
          const reborn = await repository.save(makeSnapshot({ sessionId }), {
            expectedVersion: null,
          });
          const history = await historyOf(repository, sessionId);
          expect(history.map((item) => item.version)).toEqual([6]);
          expectSameSnapshot(history[0], reborn, 'history[0]');
        });

        test('history of an absent session is empty; an invalid id is INVALID_INPUT', async () => {
          const repository = await openHistory();
          expect(await historyOf(repository, randomId('absent'))).toEqual([]);
          await expectContextError(
            () => historyOf(repository, ''),
            'INVALID_INPUT',
            'history() with an empty id',
          );
        });
      });
    }
  });
}
