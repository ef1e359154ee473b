import { type ContextRepository, LIMITS, type SessionContext, type StoredFields } from '@ctx/core';
import { describe, expect } from 'vitest';
import { expectContextError } from './assertions.js';
import { TRICKY_TEXTS } from './fixtures.js';
import type { RepositoryFactoryOptions } from './harness.js';
import { makeSnapshot, nextVersion, randomId } from './random.js';

/** What the main suite lends the custom-fields group. */
export interface FieldsSuiteContext {
  test(name: string, body: () => Promise<void>): void;
  open(options?: RepositoryFactoryOptions): Promise<ContextRepository>;
  openPair(
    options?: RepositoryFactoryOptions,
  ): Promise<[first: ContextRepository, second: ContextRepository]>;
  expectStored(repository: ContextRepository, expected: SessionContext | null): Promise<void>;
  /** Whether the harness declares history (then fields must be kept per version). */
  history: boolean;
}

/**
 * Custom fields every backend must keep exactly: nested objects and arrays, unicode keys and
 * values (tricky text of every kind), nulls at every level, numbers of every magnitude, booleans.
 */
export function trickyFields(): StoredFields {
  return {
    platform: 'fly',
    region: null,
    instances: 3,
    ratio: -0.000_123_456_789,
    big: 9_007_199_254_740_991,
    tiny: 5e-324,
    huge: 1.7976931348623157e308,
    public: false,
    tags: ['a', '', 'ü', null, 1, true, [], {}],
    nested: { deeper: { deepest: [{ a: null }, [1, [2, [3]]]] }, empty: {} },
    texts: { ...TRICKY_TEXTS },
    'ключ 🔑': 'value with a key in Cyrillic and an emoji',
    '"quoted" key': "it's",
    Upper: 1,
    lower: 2,
  };
}

/**
 * The custom-fields group (capability `fields`): `snapshot.fields`, one JSON object, round-trips
 * unchanged through save, get, list and history on two connections; an update replaces it; a
 * delete drops it; invalid fields are refused with nothing written.
 */
export function describeFieldsGroup(context: FieldsSuiteContext): void {
  const { test, expectStored } = context;
  const open = async (options?: RepositoryFactoryOptions) => {
    const repository = await context.open(options);
    expect(
      repository.capabilities?.fields,
      'a repository of a harness declaring fields must declare capabilities.fields',
    ).toBe(true);
    return repository;
  };

  describe('capability: fields', () => {
    test('nested JSON, unicode and nulls round-trip unchanged, also on a second connection', async () => {
      const [first, second] = await context.openPair();
      const snapshot = makeSnapshot({ fields: trickyFields() });
      const saved = await first.save(snapshot, { expectedVersion: null });
      expect(saved.fields).toEqual(snapshot.fields);
      await expectStored(first, snapshot);
      await expectStored(second, snapshot);
    });

    test('a snapshot without fields reads back with fields null; an empty object too', async () => {
      const repository = await open();
      const plain = makeSnapshot();
      delete plain.fields;
      await repository.save(plain, { expectedVersion: null });
      expect((await repository.get(plain.sessionId))?.fields).toBeNull();
      const explicit = makeSnapshot({ fields: null });
      await repository.save(explicit, { expectedVersion: null });
      await expectStored(repository, explicit);
    });

    test('an update replaces the fields object as a whole; null removes it', async () => {
      const repository = await open();
      const first = makeSnapshot({ fields: { a: 1, b: { c: 'd' } } });
      await repository.save(first, { expectedVersion: null });
      const second = nextVersion(first, { fields: { b: { e: ['f'] }, g: null } });
      await repository.save(second, { expectedVersion: 1 });
      await expectStored(repository, second);
      const third = nextVersion(second, { fields: null });
      await repository.save(third, { expectedVersion: 2 });
      await expectStored(repository, third);
    });

    test('fields of the maximum size round-trip', async () => {
      const repository = await open();
      const chunk = `${TRICKY_TEXTS.cjk} ${TRICKY_TEXTS.emoji}`;
      const values: string[] = [];
      let length = 20;
      while (length + chunk.length + 3 < LIMITS.fieldsMaxLength - 200) {
        values.push(chunk);
        length += JSON.stringify(chunk).length + 1;
      }
      const snapshot = makeSnapshot({ fields: { values } });
      expect(JSON.stringify(snapshot.fields).length).toBeLessThanOrEqual(LIMITS.fieldsMaxLength);
      await repository.save(snapshot, { expectedVersion: null });
      await expectStored(repository, snapshot);
    });

    test('list returns the fields of every item', async () => {
      const repository = await open();
      const userId = randomId('fields-user');
      const items = [
        makeSnapshot({ userId, fields: { n: 1, s: 'ü' } }),
        makeSnapshot({ userId, fields: null }),
        makeSnapshot({ userId, fields: { nested: [{ deep: true }] } }),
      ];
      for (const item of items) await repository.save(item, { expectedVersion: null });
      const page = await repository.list({ userId });
      expect(page.items).toHaveLength(3);
      for (const item of items) {
        const listed = page.items.find((candidate) => candidate.sessionId === item.sessionId);
        expect(listed?.fields ?? null, `list() fields of ${item.sessionId}`).toEqual(item.fields);
      }
    });

    test('delete drops the fields; a session re-created under the id starts without them', async () => {
      const repository = await open();
      const snapshot = makeSnapshot({ fields: { platform: 'render' } });
      await repository.save(snapshot, { expectedVersion: null });
      expect(await repository.delete(snapshot.sessionId)).toBe(true);
      const reborn = makeSnapshot({ sessionId: snapshot.sessionId });
      delete reborn.fields;
      const saved = await repository.save(reborn, { expectedVersion: null });
      expect(saved.fields ?? null).toBeNull();
      expect((await repository.get(snapshot.sessionId))?.fields).toBeNull();
    });

    test('invalid fields are refused with INVALID_INPUT and nothing is written', async () => {
      const repository = await open();
      for (const fields of [
        { a: 'nul \u0000 inside' },
        { a: Number.NaN },
        { a: undefined },
        { '': 1 },
        { a: 'x'.repeat(LIMITS.fieldsMaxLength) },
      ]) {
        const snapshot = makeSnapshot({ fields: fields as unknown as StoredFields });
        await expectContextError(
          () => repository.save(snapshot, { expectedVersion: null }),
          'INVALID_INPUT',
          `save() with fields ${JSON.stringify(fields).slice(0, 40)}`,
        );
        expect(await repository.get(snapshot.sessionId)).toBeNull();
      }
    });

    if (context.history) {
      test('history keeps each version with its own fields', async () => {
        const repository = await open({ historyLimit: 3 });
        const first = makeSnapshot({ fields: { step: 1, tags: ['a'] } });
        await repository.save(first, { expectedVersion: null });
        const second = nextVersion(first, { fields: { step: 2, tags: [] } });
        await repository.save(second, { expectedVersion: 1 });
        const third = nextVersion(second, { fields: null });
        await repository.save(third, { expectedVersion: 2 });
        const history = await (repository.history as NonNullable<ContextRepository['history']>)(
          first.sessionId,
        );
        expect(history.map((item) => item.fields ?? null)).toEqual([
          null,
          { step: 2, tags: [] },
          { step: 1, tags: ['a'] },
        ]);
      });
    }
  });
}
