import { describe, expect, it } from 'vitest';
import {
  type ContextDriver,
  createDriverRepository,
  DRIVER_SPEC_VERSION,
  resolveRepositorySettings,
} from '../src/adapter/index.js';
import {
  ContextError,
  type SessionContext,
  StorageError,
  type StoredFields,
} from '../src/index.js';

const snapshot = (overrides: Partial<SessionContext> = {}): SessionContext => ({
  sessionId: 's1',
  userId: 'u1',
  summary: 'A summary.',
  goal: null,
  plan: null,
  progress: null,
  createdAt: new Date(1_000),
  updatedAt: new Date(2_000),
  version: 1,
  ...overrides,
});

/** A driver whose every answer a test decides. */
function fakeDriver(overrides: Partial<ContextDriver> = {}): ContextDriver {
  return {
    specVersion: DRIVER_SPEC_VERSION,
    name: 'Fake',
    supports: { ttl: false, history: false },
    read: () => null,
    write: ({ snapshot: written }) => ({ written: true, version: written.version }),
    remove: () => ({ status: 'absent' }),
    scan: () => [],
    purge: () => 0,
    ...overrides,
  };
}

/** The same value with object keys in code-unit order (as JSON text would list them). */
function canonicalOrder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonicalOrder);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map((key) => [key, canonicalOrder((value as Record<string, unknown>)[key])]),
  );
}

const settings = (options = {}) => resolveRepositorySettings('Fake', options);

async function errorOf(promise: Promise<unknown>): Promise<ContextError> {
  try {
    await promise;
  } catch (error) {
    if (ContextError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a ContextError');
}

describe('createDriverRepository', () => {
  it('hands out custom fields in canonical key order, whatever order the backend returns', async () => {
    const reordered = { z: 1, a: { y: [{ b: -0, a: 'x' }], b: null }, '10': true, '9': false };
    const canonical = { a: { b: null, y: [{ a: 'x', b: 0 }] }, z: 1, '10': true, '9': false };
    for (const [returned, expected] of [
      [reordered, canonical],
      [canonical, canonical],
    ] as const) {
      const repository = createDriverRepository(
        fakeDriver({
          supports: { ttl: false, history: false, fields: true },
          read: () => snapshot({ fields: structuredClone(returned) as StoredFields }),
        }),
        settings(),
      );
      const fields = (await repository.get('s1'))?.fields ?? {};
      expect(fields).toEqual(expected);
      expect(JSON.stringify(fields)).toBe(JSON.stringify(canonicalOrder(expected)));
      expect(Object.is((fields as { a: { y: { b: number }[] } }).a.y[0]?.b, -0)).toBe(false);
    }
  });

  it('refuses a driver written for another spec version, or missing a method', () => {
    expect(() =>
      createDriverRepository(fakeDriver({ specVersion: DRIVER_SPEC_VERSION + 1 }), settings()),
    ).toThrow(/driver spec/);
    const { scan: _scan, ...incomplete } = fakeDriver();
    expect(() =>
      createDriverRepository(incomplete as unknown as ContextDriver, settings()),
    ).toThrow(/missing scan/);
  });

  it('refuses settings the driver cannot honour', () => {
    expect(() => createDriverRepository(fakeDriver(), settings({ ttlMs: 1000 }))).toThrow(
      /does not support expiry/,
    );
    expect(() => createDriverRepository(fakeDriver(), settings({ historyLimit: 2 }))).toThrow(
      /does not keep history/,
    );
  });

  it('computes the expiry from ttlMs and the clock, and returns the version the driver stored', async () => {
    const requests: unknown[] = [];
    const repository = createDriverRepository(
      fakeDriver({
        supports: { ttl: true, history: false },
        write: (request) => {
          requests.push(request);
          return { written: true, version: 7 };
        },
      }),
      settings({ ttlMs: 500, now: () => 10_000 }),
    );
    const saved = await repository.save(snapshot(), { expectedVersion: null });
    expect(saved.version).toBe(7);
    expect(requests).toMatchObject([{ now: 10_000, expiresAt: 10_500, expectedVersion: null }]);
  });

  it('turns driver answers into typed errors', async () => {
    const repository = createDriverRepository(
      fakeDriver({
        write: () => ({ written: false, currentVersion: 4 }),
        remove: ({ userId }) =>
          userId ? { status: 'owner-mismatch' } : { status: 'version-mismatch', currentVersion: 4 },
      }),
      settings(),
    );
    const conflict = await errorOf(repository.save(snapshot(), { expectedVersion: null }));
    expect(conflict).toMatchObject({ code: 'VERSION_CONFLICT', currentVersion: 4 });
    expect(await errorOf(repository.delete('s1', { userId: 'bob' }))).toMatchObject({
      code: 'OWNERSHIP_MISMATCH',
    });
    expect(await errorOf(repository.delete('s1', { expectedVersion: 3 }))).toMatchObject({
      code: 'VERSION_CONFLICT',
      currentVersion: 4,
    });
  });

  it('wraps driver errors through classifyError, and unknown ones as STORAGE_ERROR', async () => {
    const outage = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const repository = createDriverRepository(
      fakeDriver({
        read: ({ sessionId }) => {
          throw sessionId === 'down' ? outage : new Error('syntax error');
        },
        classifyError: (error) =>
          (error as { code?: string }).code === 'ECONNREFUSED'
            ? { code: 'STORAGE_UNAVAILABLE', message: 'the server refused the connection' }
            : undefined,
      }),
      settings(),
    );
    const unavailable = await errorOf(repository.get('down'));
    expect(StorageError.isInstance(unavailable)).toBe(true);
    expect(unavailable.code).toBe('STORAGE_UNAVAILABLE');
    expect(unavailable.message).toBe(
      'Could not get a session (Fake): the server refused the connection',
    );
    expect(unavailable.cause).toBe(outage);
    const other = await errorOf(repository.get('other'));
    expect(other.code).toBe('STORAGE_ERROR');
    expect(other.message).toContain('syntax error');
  });

  it('runs init once before the first call, and again after it failed', async () => {
    let calls = 0;
    const repository = createDriverRepository(
      fakeDriver({
        init: async () => {
          calls += 1;
          if (calls === 1) throw new Error('not yet');
        },
      }),
      settings(),
    );
    expect((await errorOf(repository.get('s1'))).message).toContain('not yet');
    await Promise.all([repository.get('s1'), repository.get('s2'), repository.list()]);
    await repository.get('s3');
    expect(calls).toBe(2);
  });

  it('close waits for calls under way, closes the driver once, and refuses later calls', async () => {
    let release = () => {};
    let closes = 0;
    const repository = createDriverRepository(
      fakeDriver({
        read: () =>
          new Promise((resolve) => {
            release = () => resolve(snapshot());
          }),
        close: () => {
          closes += 1;
        },
      }),
      settings(),
    );
    const reading = repository.get('s1');
    await new Promise((resolve) => setImmediate(resolve));
    const closing = repository.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(closes, 'the driver stays open while a call runs').toBe(0);
    release();
    expect((await reading)?.summary).toBe('A summary.');
    await Promise.all([closing, repository.close()]);
    expect(closes).toBe(1);
    expect((await errorOf(repository.get('s1'))).code).toBe('CLOSED');
  });

  it('validates before touching the driver', async () => {
    let touched = false;
    const repository = createDriverRepository(
      fakeDriver({
        read: () => {
          touched = true;
          return null;
        },
      }),
      settings(),
    );
    expect((await errorOf(repository.get(''))).code).toBe('INVALID_INPUT');
    expect((await errorOf(repository.list({ limit: 0 }))).code).toBe('INVALID_INPUT');
    expect(
      (await errorOf(repository.save(snapshot({ version: 3 }), { expectedVersion: 1 }))).code,
    ).toBe('INVALID_INPUT');
    expect(touched).toBe(false);
  });
});

describe('createDriverRepository: migrate', () => {
  it('exposes the driver migrate() without running init first, wraps its errors, and refuses it after close', async () => {
    let inits = 0;
    let migrations = 0;
    const repository = createDriverRepository(
      {
        ...fakeDriver({
          init: () => {
            inits += 1;
            throw new Error('schema is not migrated');
          },
        }),
        migrate: async () => {
          migrations += 1;
          if (migrations === 2) throw new Error('lock wait timeout');
          return { applied: [1, 2] };
        },
      },
      settings(),
    );
    expect(await repository.migrate()).toEqual({ applied: [1, 2] });
    expect(inits).toBe(0);
    const failed = await errorOf(repository.migrate());
    expect(failed.code).toBe('STORAGE_ERROR');
    expect(failed.message).toBe('Could not migrate the schema (Fake): lock wait timeout');
    await repository.close();
    expect((await errorOf(repository.migrate())).code).toBe('CLOSED');
  });

  it('adds no migrate() for a driver without one', () => {
    const repository = createDriverRepository(fakeDriver(), settings());
    expect('migrate' in repository).toBe(false);
  });
});
