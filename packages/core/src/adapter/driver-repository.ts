import {
  BackpressureError,
  ContextError,
  OwnershipError,
  StorageError,
  ValidationError,
  VersionConflictError,
} from '../errors.js';
import {
  assertValidSave,
  type ContextRepository,
  cloneSnapshot,
  type DeleteOptions,
  type ListPage,
  type ListQuery,
  normalizeListQuery,
  type RepositoryCapabilities,
  type SaveOptions,
  toListPage,
} from '../repository.js';
import {
  assertValidSessionId,
  canonicalFields,
  ensureCanonicalFields,
  parseOrThrow,
  type SessionContext,
  TurnIdSchema,
  TurnInputSchema,
  UserIdSchema,
} from '../schema.js';
import type { PendingSessionsQuery, RecordedTurn, TurnLog } from '../turn-log.js';
import {
  type Awaitable,
  type ContextDriver,
  DRIVER_SPEC_VERSION,
  type DriverTurn,
} from './driver.js';
import { invalidOption, type RepositorySettings } from './repository-settings.js';

/**
 * What {@link createDriverRepository} adds for a driver with `migrate()`: the same method on the
 * repository, resolving to what the driver's resolves to.
 */
export type MigrateMethod<Driver extends ContextDriver> = Driver extends {
  migrate(): Awaitable<infer Result>;
}
  ? { migrate(): Promise<Result> }
  : unknown;

/** A repository built by {@link createDriverRepository}: every optional member is present. */
export interface DriverRepository extends ContextRepository {
  /** Which optional capabilities are on (from `ttlMs` and `historyLimit`). */
  readonly capabilities: RepositoryCapabilities;
  /** The settings the repository runs with. */
  readonly settings: RepositorySettings;
  /** Deletes expired sessions and forgets old tombstones; returns how many sessions expired. */
  purgeExpired(): Promise<number>;
}

// Ids of 1–256 code units with no control character and no surrogate are valid by construction:
// they skip the schema parse on the hot path. Anything else takes the full validation and its
// error message.
const PLAIN_SESSION_ID = /^[^\u0000-\u001f\u007f\ud800-\udfff]{1,256}$/;

function assertSessionId(sessionId: unknown): asserts sessionId is string {
  if (typeof sessionId !== 'string' || !PLAIN_SESSION_ID.test(sessionId)) {
    assertValidSessionId(sessionId);
  }
}

function assertDeleteOptions(options: DeleteOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError('INVALID_INPUT', 'Invalid delete options: expected an object', {
      issues: [{ path: '(root)', message: 'not an object' }],
    });
  }
  if (options.userId !== undefined) parseOrThrow(UserIdSchema, options.userId, 'user id');
  const expected = options.expectedVersion;
  if (expected !== undefined && !(Number.isSafeInteger(expected) && expected >= 1)) {
    throw new ValidationError(
      'INVALID_INPUT',
      `Invalid expectedVersion ${String(expected)}: expected a positive integer`,
      { issues: [{ path: 'expectedVersion', message: 'not a positive integer' }] },
    );
  }
}

function assertDriver(driver: ContextDriver, backend: string): void {
  const required = ['read', 'write', 'remove', 'scan', 'purge'] as const;
  const missing = required.filter((name) => typeof driver?.[name] !== 'function');
  if (missing.length > 0) {
    throw invalidOption(backend, 'driver', `missing ${missing.join(', ')}`);
  }
  if (driver.specVersion !== DRIVER_SPEC_VERSION) {
    throw invalidOption(
      backend,
      'driver',
      `written for driver spec ${String(driver.specVersion)}, but this @ctx/core implements spec ${DRIVER_SPEC_VERSION}`,
    );
  }
  if (driver.supports.history && typeof driver.history !== 'function') {
    throw invalidOption(backend, 'driver', 'supports history but has no history()');
  }
  if (driver.supports.turnLog) {
    const turnLog = [
      'recordTurn',
      'readPending',
      'lease',
      'releaseLease',
      'pendingSessions',
    ] as const;
    const absent = turnLog.filter((name) => typeof driver[name] !== 'function');
    if (absent.length > 0) {
      throw invalidOption(backend, 'driver', `supports turnLog but has no ${absent.join(', ')}`);
    }
  }
}

function invalidInput(path: string, message: string): ValidationError {
  return new ValidationError('INVALID_INPUT', `Invalid ${path}: ${message}`, {
    issues: [{ path, message }],
  });
}

function assertFoldedTurnIds(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalidInput('foldedTurnIds', 'expected an array of turn ids');
  for (const turnId of value) parseOrThrow(TurnIdSchema, turnId, 'folded turn id');
  if (new Set(value).size !== value.length) {
    throw invalidInput('foldedTurnIds', 'a turn id is listed twice');
  }
  return value as string[];
}

function assertPositiveInteger(value: unknown, path: string): number {
  if (!(Number.isSafeInteger(value) && (value as number) >= 1)) {
    throw invalidInput(path, `${String(value)} is not a positive integer`);
  }
  return value as number;
}

// What the repository hands out: every snapshot has `fields` (null when none), in canonical key
// order whatever order the backend keeps JSON keys in.
function fromDriver(snapshot: SessionContext, fields: boolean): SessionContext {
  snapshot.fields = fields ? ensureCanonicalFields(snapshot.fields) : null;
  return snapshot;
}

const toRecordedTurn = (turn: DriverTurn): RecordedTurn => ({
  turnId: turn.turnId,
  userId: turn.userId,
  messages: turn.messages,
  sequence: turn.sequence,
  recordedAt: new Date(turn.recordedAt),
});

/**
 * Turns a {@link ContextDriver} into a `ContextRepository` and does the work every backend shares:
 * validates every argument (`INVALID_INPUT`), refuses calls after `close()` (`CLOSED`), turns list
 * queries into keyset scans and pages with cursors, computes expiry times from `ttlMs`, turns
 * driver outcomes into `VERSION_CONFLICT` and `OWNERSHIP_MISMATCH`, wraps whatever the driver
 * throws into a typed `ContextError` (through `driver.classifyError`), runs `driver.init()` once
 * before the first operation, and closes the driver once.
 *
 * Settings the driver cannot honour (`ttlMs` without `supports.ttl`, `historyLimit` without
 * `supports.history`) are refused with `INVALID_CONFIG`.
 *
 * @example
 * ```ts
 * const settings = resolveRepositorySettings('MyDB', options);
 * const repository = createDriverRepository(createMyDriver(client, settings), settings);
 * ```
 */
export function createDriverRepository<Driver extends ContextDriver>(
  driver: Driver,
  settings: RepositorySettings,
): DriverRepository & MigrateMethod<Driver> {
  const { backend, ttlMs, historyLimit, tombstoneRetentionMs, now } = settings;
  assertDriver(driver, backend);
  if (ttlMs !== undefined && !driver.supports.ttl) {
    throw invalidOption(backend, 'ttlMs', 'this backend does not support expiry');
  }
  if (historyLimit > 0 && !driver.supports.history) {
    throw invalidOption(backend, 'historyLimit', 'this backend does not keep history');
  }

  const storesFields = driver.supports.fields === true;
  let closed = false;
  let ready = driver.init === undefined;
  let initializing: Promise<void> | undefined;

  const wrap = (error: unknown, action: string): ContextError => {
    if (ContextError.isInstance(error)) return error;
    let known: ReturnType<NonNullable<ContextDriver['classifyError']>>;
    try {
      known = driver.classifyError?.(error);
    } catch {
      known = undefined;
    }
    if (known) {
      return new StorageError(known.code, `Could not ${action} (${backend}): ${known.message}`, {
        cause: error,
      });
    }
    const detail = error instanceof Error ? error.message : String(error);
    return new StorageError('STORAGE_ERROR', `Could not ${action} (${backend}): ${detail}`, {
      cause: error,
    });
  };

  const assertOpen = (action: string) => {
    if (closed) {
      throw new StorageError('CLOSED', `The ${backend} repository is closed: cannot ${action}`);
    }
  };

  const prepare = async (): Promise<void> => {
    if (ready) return;
    initializing ??= (async () => {
      try {
        await driver.init?.();
        ready = true;
      } finally {
        initializing = undefined;
      }
    })();
    await initializing;
  };

  // The TurnLog members, for a driver that supports the turn log.
  function turnLogMethods(): TurnLog {
    const log = driver as Required<
      Pick<
        ContextDriver,
        'recordTurn' | 'readPending' | 'lease' | 'releaseLease' | 'pendingSessions'
      >
    >;
    return {
      async recordTurn(sessionId, turn) {
        assertOpen('record a turn');
        assertSessionId(sessionId);
        const parsed = parseOrThrow(TurnInputSchema, turn, 'turn');
        const result = await run('record a turn', () =>
          log.recordTurn({
            sessionId,
            turn: parsed,
            now: now(),
            maxPending: settings.maxPendingTurns,
          }),
        );
        if (result.status === 'full') {
          throw new BackpressureError({
            sessionId,
            pending: result.pending,
            limit: settings.maxPendingTurns,
          });
        }
        return {
          turnId: parsed.turnId,
          sequence: result.sequence,
          duplicate: result.status === 'duplicate',
        };
      },

      async pendingTurns(sessionId, options) {
        assertOpen('read pending turns');
        assertSessionId(sessionId);
        const limit = assertPositiveInteger(options?.limit ?? settings.maxPendingTurns, 'limit');
        const turns = await run('read pending turns', () => log.readPending({ sessionId, limit }));
        return turns.map(toRecordedTurn);
      },

      async acquireLease(sessionId, options) {
        assertOpen('take a lease');
        assertSessionId(sessionId);
        const holder = parseOrThrow(TurnIdSchema, options?.holder, 'lease holder');
        const ttl = assertPositiveInteger(options?.ttlMs, 'ttlMs');
        return run('take a lease', () => log.lease({ sessionId, holder, ttlMs: ttl, now: now() }));
      },

      async releaseLease(sessionId, holder) {
        assertOpen('release a lease');
        assertSessionId(sessionId);
        parseOrThrow(TurnIdSchema, holder, 'lease holder');
        await run('release a lease', () => log.releaseLease({ sessionId, holder }));
      },

      async sessionsWithPendingTurns(query?: PendingSessionsQuery) {
        assertOpen('list sessions with pending turns');
        const time = now();
        const recordedBefore = query?.recordedBefore ?? new Date(time);
        if (!(recordedBefore instanceof Date) || Number.isNaN(recordedBefore.getTime())) {
          throw invalidInput('recordedBefore', 'expected a valid Date');
        }
        const limit = assertPositiveInteger(query?.limit ?? 100, 'limit');
        return run('list sessions with pending turns', () =>
          log.pendingSessions({ recordedBefore: recordedBefore.getTime(), limit, now: time }),
        );
      },
    };
  }

  // Calls under way when close() is called finish on an open driver; close() waits for them.
  let running = 0;
  let drained: (() => void) | undefined;

  // Validation errors are thrown before the driver is touched; everything after is wrapped.
  const run = async <T>(
    action: string,
    body: () => T | Promise<T>,
    prepared = true,
  ): Promise<T> => {
    running += 1;
    try {
      if (prepared && !ready) await prepare();
      return await body();
    } catch (error) {
      throw wrap(error, action);
    } finally {
      running -= 1;
      if (running === 0) drained?.();
    }
  };

  const repository: DriverRepository = {
    capabilities: {
      ttl: ttlMs !== undefined,
      history: historyLimit > 0,
      turnLog: driver.supports.turnLog === true,
      fields: storesFields,
    },
    settings,

    async get(sessionId: string) {
      assertOpen('get a session');
      assertSessionId(sessionId);
      const snapshot = await run('get a session', () => driver.read({ sessionId, now: now() }));
      return snapshot && fromDriver(snapshot, storesFields);
    },

    async save(snapshot: SessionContext, options: SaveOptions) {
      assertOpen('save a session');
      assertValidSave(snapshot, options);
      const { expectedVersion } = options;
      const foldedTurnIds = assertFoldedTurnIds(options.foldedTurnIds);
      if (foldedTurnIds.length > 0 && !driver.supports.turnLog) {
        throw invalidInput('foldedTurnIds', `the ${backend} repository has no turn log`);
      }
      const fields = canonicalFields(snapshot.fields);
      if (fields !== null && !storesFields) {
        throw invalidInput('fields', `the ${backend} repository does not store custom fields`);
      }
      const time = now();
      const result = await run('save a session', () =>
        driver.write({
          snapshot: { ...snapshot, fields },
          expectedVersion,
          now: time,
          expiresAt: ttlMs === undefined ? null : time + ttlMs,
          historyLimit,
          foldedTurnIds,
        }),
      );
      if (!result.written) {
        throw new VersionConflictError({
          sessionId: snapshot.sessionId,
          expectedVersion,
          currentVersion: result.currentVersion,
        });
      }
      const stored = cloneSnapshot(snapshot);
      stored.version = result.version;
      return stored;
    },

    async delete(sessionId: string, options?: DeleteOptions) {
      assertOpen('delete a session');
      assertSessionId(sessionId);
      assertDeleteOptions(options);
      const result = await run('delete a session', () =>
        driver.remove({
          sessionId,
          userId: options?.userId,
          expectedVersion: options?.expectedVersion,
          now: now(),
        }),
      );
      switch (result.status) {
        case 'removed':
          return true;
        case 'absent':
          if (options?.expectedVersion !== undefined) {
            throw new VersionConflictError({
              sessionId,
              expectedVersion: options.expectedVersion,
              currentVersion: null,
            });
          }
          return false;
        case 'owner-mismatch':
          throw new OwnershipError(sessionId);
        case 'version-mismatch':
          throw new VersionConflictError({
            sessionId,
            expectedVersion: options?.expectedVersion ?? null,
            currentVersion: result.currentVersion,
          });
      }
    },

    async list(query?: ListQuery): Promise<ListPage> {
      assertOpen('list sessions');
      const { userId, limit, after } = normalizeListQuery(query);
      const items = await run('list sessions', () =>
        driver.scan({ userId, after, limit: limit + 1, now: now() }),
      );
      return toListPage(
        items.map((item) => fromDriver(item, storesFields)),
        limit,
      );
    },

    async purgeExpired() {
      assertOpen('purge expired sessions');
      const time = now();
      return run('purge expired sessions', () =>
        driver.purge({ now: time, tombstonesBefore: time - tombstoneRetentionMs }),
      );
    },

    async close() {
      if (closed) return;
      closed = true;
      try {
        if (running > 0) {
          await new Promise<void>((resolve) => {
            drained = resolve;
          });
        }
        await driver.close?.();
      } catch (error) {
        throw wrap(error, 'close the repository');
      }
    },
  };

  if (driver.supports.turnLog) Object.assign(repository, turnLogMethods());

  if (typeof driver.migrate === 'function') {
    const migrate = driver.migrate.bind(driver);
    Object.assign(repository, {
      async migrate() {
        assertOpen('migrate');
        // An explicit migration must not wait for init(), which may refuse an unmigrated schema.
        return run('migrate the schema', migrate, false);
      },
    });
  }
  if (historyLimit > 0) {
    const history = driver.history as NonNullable<ContextDriver['history']>;
    repository.history = async (sessionId, options) => {
      assertOpen('read session history');
      assertSessionId(sessionId);
      const limit = options?.limit ?? historyLimit;
      if (!(Number.isInteger(limit) && limit >= 1)) {
        throw new ValidationError(
          'INVALID_INPUT',
          `Invalid history limit ${String(limit)}: expected a positive integer`,
          { issues: [{ path: 'limit', message: 'not a positive integer' }] },
        );
      }
      const versions = await run('read session history', () =>
        history.call(driver, {
          sessionId,
          limit: Math.min(limit, historyLimit),
          historyLimit,
          now: now(),
        }),
      );
      return versions.map((version) => fromDriver(version, storesFields));
    };
  }
  return repository as DriverRepository & MigrateMethod<Driver>;
}
