import {
  type ContextExtractor,
  type ContextRepository,
  type SessionContext,
  SessionContextStore,
  type VersionConflictError,
} from '@ctx/core';
import { describe, expect } from 'vitest';
import { expectContextError, expectSameSnapshot } from './assertions.js';
import type { RepositoryFactoryOptions } from './harness.js';
import { makeSnapshot, nextVersion, randomId, randomInt, sleep } from './random.js';

/** What the main suite lends the identity groups. */
export interface IdentitySuiteContext {
  test(name: string, body: () => Promise<void>): void;
  /** A repository on the shared backend. */
  open(options?: RepositoryFactoryOptions): Promise<ContextRepository>;
  /**
   * Two repositories on independent connections to the same data; the same repository twice when
   * the backend has no second connection.
   */
  openPair(
    options?: RepositoryFactoryOptions,
  ): Promise<[first: ContextRepository, second: ContextRepository]>;
  /** Checks the stored state through the repository and out of band. */
  expectStored(
    repository: ContextRepository,
    expected: SessionContext | null,
    sessionId?: string,
  ): Promise<void>;
  ttl: { ttlMs: number; slackMs: number } | null;
}

/** Saves a create over a deleted or expired id: same content, a version above `above`. */
async function recreate(
  repository: ContextRepository,
  snapshot: SessionContext,
  above: number,
): Promise<SessionContext> {
  const saved = await repository.save(snapshot, { expectedVersion: null });
  expect(
    saved.version,
    `a session re-created after version ${above} was deleted or expired must get a higher version (versions of one id never restart)`,
  ).toBeGreaterThan(above);
  expectSameSnapshot(saved, { ...snapshot, version: saved.version }, 'save() result');
  return saved;
}

/**
 * An extractor whose calls can be held: `hold()` makes the next call wait until `release()`, so a
 * test can delete and re-create a session while an update is between its read and its write.
 */
function createHeldExtractor() {
  let held: { entered: () => void; gate: Promise<void> } | null = null;
  let release = () => {};
  const extractor: ContextExtractor = {
    async extract(request) {
      const text = request.messages.map((message) => message.content).join(' ');
      if (held) {
        const { entered, gate } = held;
        held = null;
        entered();
        await gate;
      }
      return { draft: { summary: text } };
    },
  };
  return {
    extractor,
    /** Resolves when the next extraction has started (its snapshot is read). */
    hold(): Promise<void> {
      return new Promise<void>((entered) => {
        const gate = new Promise<void>((resolve) => {
          release = resolve;
        });
        held = { entered, gate };
      });
    },
    release: () => release(),
  };
}

/**
 * The contracts-v2 groups: a session's identity survives delete and expiry (no stale writer can
 * write into a session re-created under the same id), and deletes on behalf of a user or a version
 * are atomic conditional operations.
 */
export function describeIdentityGroups(context: IdentitySuiteContext): void {
  const { test, open, openPair, expectStored } = context;

  describe('session identity across delete', () => {
    test('versions of one id never restart: delete and re-create twice', async () => {
      const repository = await open();
      const first = await repository.save(makeSnapshot(), { expectedVersion: null });
      const sessionId = first.sessionId;
      expect(await repository.delete(sessionId)).toBe(true);
      const second = await recreate(repository, makeSnapshot({ sessionId }), first.version);
      expect(await repository.delete(sessionId)).toBe(true);
      const third = await recreate(repository, makeSnapshot({ sessionId }), second.version);
      await expectStored(repository, third);
      const next = await repository.save(nextVersion(third), { expectedVersion: third.version });
      expect(next.version).toBe(third.version + 1);
    });

    test('a stale writer on another connection cannot write into a session re-created after a delete', async () => {
      const [alice, bob] = await openPair();
      const first = await alice.save(makeSnapshot({ summary: 'Alice v1' }), {
        expectedVersion: null,
      });
      const read = await alice.save(nextVersion(first, { summary: 'Alice v2' }), {
        expectedVersion: 1,
      });
      // Alice's slow writer has read version 2. Meanwhile the session is deleted and Bob creates
      // one under the same id.
      expect(await bob.delete(read.sessionId, { userId: read.userId as string })).toBe(true);
      const bobs = await recreate(
        bob,
        makeSnapshot({ sessionId: read.sessionId, userId: randomId('bob'), summary: "Bob's" }),
        read.version,
      );
      for (const expectedVersion of [1, 2]) {
        const conflict = await expectContextError(
          () =>
            alice.save(
              {
                ...nextVersion(read, { summary: 'Alice stale text' }),
                version: expectedVersion + 1,
              },
              { expectedVersion },
            ),
          'VERSION_CONFLICT',
          `a stale save with expectedVersion ${expectedVersion} after delete + re-create`,
        );
        expect((conflict as VersionConflictError).currentVersion).toBe(bobs.version);
      }
      await expectStored(bob, bobs);
      await expectStored(alice, bobs);
    });

    test("a deleted session's stale writer cannot bring it back", async () => {
      const [repository, other] = await openPair();
      const first = await repository.save(makeSnapshot(), { expectedVersion: null });
      expect(await other.delete(first.sessionId)).toBe(true);
      const conflict = await expectContextError(
        () => repository.save(nextVersion(first), { expectedVersion: 1 }),
        'VERSION_CONFLICT',
        'a save of a deleted session',
      );
      expect((conflict as VersionConflictError).currentVersion).toBeNull();
      await expectStored(repository, null, first.sessionId);
    });

    test('two stores on separate connections: a slow update fails typed and leaves the new owner intact', async () => {
      const held = createHeldExtractor();
      const [aliceRepository, bobRepository] = await openPair();
      const aliceStore = new SessionContextStore({
        repository: aliceRepository,
        extractor: held.extractor,
      });
      const bobStore = new SessionContextStore({
        repository: bobRepository,
        extractor: held.extractor,
      });
      const sessionId = randomId();
      const [alice, bob] = [randomId('alice'), randomId('bob')];
      await aliceStore.update({
        sessionId,
        userId: alice,
        messages: [{ role: 'user', content: 'Alice secret plan' }],
      });
      const entered = held.hold();
      const slow = aliceStore.update({
        sessionId,
        userId: alice,
        messages: [{ role: 'user', content: 'Alice stale text' }],
      });
      const settled = slow.then(
        () => null,
        (error: unknown) => error,
      );
      await entered;
      expect(await bobStore.delete(sessionId, { userId: alice })).toBe(true);
      // Bob's session as another instance's fold writes it (Alice's slow fold holds the lease, so
      // Bob's own store would wait for it).
      const created = await bobRepository.save(
        makeSnapshot({ sessionId, userId: bob, summary: "Bob's own session" }),
        { expectedVersion: null },
      );
      held.release();
      await expectContextError(
        async () => {
          const error = await settled;
          if (error) throw error;
          return 'Alice succeeded';
        },
        'OWNERSHIP_MISMATCH',
        "Alice's stale update after Bob re-created the session",
      );
      const stored = await bobStore.get(sessionId, { userId: bob });
      expect(stored?.userId).toBe(bob);
      expect(stored?.summary).toBe("Bob's own session");
      expect(stored?.version).toBe(created.version);
    });
  });

  describe('conditional delete', () => {
    test('a delete naming another user is refused with OWNERSHIP_MISMATCH and deletes nothing', async () => {
      const repository = await open();
      const snapshot = await repository.save(makeSnapshot(), { expectedVersion: null });
      await expectContextError(
        () => repository.delete(snapshot.sessionId, { userId: randomId('impostor') }),
        'OWNERSHIP_MISMATCH',
        "an impostor's delete",
      );
      await expectStored(repository, snapshot);
      expect(
        await repository.delete(snapshot.sessionId, { userId: snapshot.userId as string }),
      ).toBe(true);
      await expectStored(repository, null, snapshot.sessionId);
    });

    test('an unowned session can be deleted by anyone; an absent one returns false', async () => {
      const repository = await open();
      const snapshot = await repository.save(makeSnapshot({ userId: null }), {
        expectedVersion: null,
      });
      expect(await repository.delete(snapshot.sessionId, { userId: randomId('someone') })).toBe(
        true,
      );
      expect(await repository.delete(snapshot.sessionId, { userId: randomId('someone') })).toBe(
        false,
      );
    });

    test('a delete naming a version deletes only that version', async () => {
      const repository = await open();
      const first = await repository.save(makeSnapshot(), { expectedVersion: null });
      const second = await repository.save(nextVersion(first), { expectedVersion: 1 });
      const conflict = await expectContextError(
        () => repository.delete(first.sessionId, { expectedVersion: 1 }),
        'VERSION_CONFLICT',
        'a delete of an older version',
      );
      expect((conflict as VersionConflictError).currentVersion).toBe(2);
      await expectStored(repository, second);
      expect(await repository.delete(first.sessionId, { expectedVersion: 2 })).toBe(true);
      await expectStored(repository, null, first.sessionId);
    });

    test('invalid delete conditions are refused with INVALID_INPUT', async () => {
      const repository = await open();
      const snapshot = await repository.save(makeSnapshot(), { expectedVersion: null });
      await expectContextError(
        () => repository.delete(snapshot.sessionId, { userId: '' }),
        'INVALID_INPUT',
        'a delete with an empty user id',
      );
      await expectContextError(
        () => repository.delete(snapshot.sessionId, { expectedVersion: 0 }),
        'INVALID_INPUT',
        'a delete with version 0',
      );
      await expectStored(repository, snapshot);
    });

    test("an impostor's delete racing the owner's delete and re-create never deletes", async () => {
      const [owner, impostor] = await openPair();
      const sessionId = randomId('race');
      const aliceId = randomId('alice');
      const bobId = randomId('bob');
      let latest = await owner.save(makeSnapshot({ sessionId, userId: aliceId }), {
        expectedVersion: null,
      });
      const impostorResults: unknown[] = [];
      for (let round = 0; round < 40; round += 1) {
        let ownerDone = false;
        const ownerTurn = (async () => {
          await sleep(randomInt(0, 2));
          expect(await owner.delete(sessionId, { userId: aliceId })).toBe(true);
          await sleep(randomInt(0, 3));
          latest = await owner.save(
            makeSnapshot({ sessionId, userId: aliceId, summary: `round ${round}` }),
            { expectedVersion: null },
          );
          ownerDone = true;
        })();
        const impostorTurn = (async () => {
          do {
            impostorResults.push(
              await impostor.delete(sessionId, { userId: bobId }).catch((error: unknown) => error),
            );
            // In-process backends answer in microtasks: let the owner's timers run too.
            await new Promise((resolve) => setImmediate(resolve));
          } while (!ownerDone);
        })();
        await Promise.all([ownerTurn, impostorTurn]);
        expectSameSnapshot(
          await owner.get(sessionId),
          latest,
          `the owner's session after round ${round}`,
        );
      }
      const wins = impostorResults.filter((result) => result === true);
      expect(wins.length, "the impostor's delete returned true").toBe(0);
      for (const result of impostorResults) {
        if (result === false) continue;
        expect(
          (result as { code?: unknown })?.code,
          `the impostor's delete must return false or throw OWNERSHIP_MISMATCH, got ${String(result)}`,
        ).toBe('OWNERSHIP_MISMATCH');
      }
    });
  });

  const ttl = context.ttl;
  if (ttl) {
    describe('session identity across expiry', () => {
      // Alice reads her session, it expires (and is purged, when asked), Bob creates one under the
      // same id: Alice's stale write must conflict and Bob's session must stay as he wrote it.
      const staleWriteAfterExpiry = async (purge: boolean) => {
        const [alice, bob] = await openPair({ ttlMs: ttl.ttlMs });
        const read = await alice.save(makeSnapshot({ summary: 'Alice v1' }), {
          expectedVersion: null,
        });
        await sleep(ttl.ttlMs + ttl.slackMs);
        if (purge) {
          expect(await bob.purgeExpired?.()).toBeGreaterThanOrEqual(1);
          await expectStored(bob, null, read.sessionId);
        }
        const bobs = await recreate(
          bob,
          makeSnapshot({ sessionId: read.sessionId, userId: randomId('bob'), summary: "Bob's" }),
          read.version,
        );
        await expectContextError(
          () =>
            alice.save(nextVersion(read, { summary: 'Alice stale text' }), { expectedVersion: 1 }),
          'VERSION_CONFLICT',
          `a stale save after expiry${purge ? ' + purge' : ''} + re-create`,
        );
        await expectStored(bob, bobs);
      };

      test('a stale writer cannot write into a session re-created after it expired', () =>
        staleWriteAfterExpiry(false));

      test('purgeExpired keeps the guarantee: a stale writer still conflicts after a purge', () =>
        staleWriteAfterExpiry(true));
    });
  }
}
