import { StorageError, ValidationError, VersionConflictError } from './errors.js';
import {
  assertValidSave,
  type ContextRepository,
  cloneSnapshot,
  compareForList,
  isAfterCursor,
  type ListPage,
  type ListQuery,
  normalizeListQuery,
  type SaveOptions,
  toListPage,
} from './repository.js';
import { assertValidSessionId, LIMITS, type SessionContext } from './schema.js';

/** Options of {@link createMemoryRepository}. */
export interface MemoryRepositoryOptions {
  /**
   * Sessions expire this many milliseconds after their last write. Enables the `ttl` capability.
   * @default undefined (never expire)
   */
  ttlMs?: number;
  /**
   * Keep the last N versions of every session, readable through `history`. Enables the `history`
   * capability.
   * @default 0 (no history)
   */
  historyLimit?: number;
  /** Clock used for expiry, in milliseconds. @default Date.now */
  now?: () => number;
}

interface Entry {
  snapshot: SessionContext;
  expiresAt: number | null;
  history: SessionContext[];
}

/**
 * The reference {@link ContextRepository}: a process-local map with real compare-and-set semantics,
 * TTL and history. For tests, demos and single-process tools; nothing survives the process.
 *
 * @example
 * ```ts
 * const store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
 * ```
 */
export function createMemoryRepository(options: MemoryRepositoryOptions = {}): ContextRepository {
  const { ttlMs, historyLimit = 0, now = Date.now } = options;
  if (ttlMs !== undefined && !(Number.isInteger(ttlMs) && ttlMs > 0)) {
    throw new ValidationError('INVALID_CONFIG', 'ttlMs must be a positive integer (milliseconds)');
  }
  if (
    !(
      Number.isInteger(historyLimit) &&
      historyLimit >= 0 &&
      historyLimit <= LIMITS.historyMaxVersions
    )
  ) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `historyLimit must be an integer from 0 to ${LIMITS.historyMaxVersions}`,
    );
  }
  const entries = new Map<string, Entry>();
  let closed = false;

  const assertOpen = () => {
    if (closed) throw new StorageError('CLOSED', 'The memory repository is closed');
  };
  const live = (sessionId: string): Entry | undefined => {
    const entry = entries.get(sessionId);
    if (entry && entry.expiresAt !== null && entry.expiresAt <= now()) {
      entries.delete(sessionId);
      return undefined;
    }
    return entry;
  };

  const repository: ContextRepository = {
    capabilities: { ttl: ttlMs !== undefined, history: historyLimit > 0 },

    async get(sessionId: string) {
      assertOpen();
      assertValidSessionId(sessionId);
      const entry = live(sessionId);
      return entry ? cloneSnapshot(entry.snapshot) : null;
    },

    async save(snapshot: SessionContext, saveOptions: SaveOptions) {
      assertOpen();
      assertValidSave(snapshot, saveOptions);
      const current = live(snapshot.sessionId);
      const currentVersion = current?.snapshot.version ?? null;
      if (currentVersion !== saveOptions.expectedVersion) {
        throw new VersionConflictError({
          sessionId: snapshot.sessionId,
          expectedVersion: saveOptions.expectedVersion,
          currentVersion,
        });
      }
      const stored = cloneSnapshot(snapshot);
      const history =
        historyLimit > 0 ? [stored, ...(current?.history ?? [])].slice(0, historyLimit) : [];
      entries.set(snapshot.sessionId, {
        snapshot: stored,
        expiresAt: ttlMs === undefined ? null : now() + ttlMs,
        history,
      });
      return cloneSnapshot(stored);
    },

    async delete(sessionId: string) {
      assertOpen();
      assertValidSessionId(sessionId);
      const existed = live(sessionId) !== undefined;
      entries.delete(sessionId);
      return existed;
    },

    async list(query?: ListQuery): Promise<ListPage> {
      assertOpen();
      const { userId, limit, after } = normalizeListQuery(query);
      const matches: SessionContext[] = [];
      for (const sessionId of [...entries.keys()]) {
        const entry = live(sessionId);
        if (!entry) continue;
        if (userId !== undefined && entry.snapshot.userId !== userId) continue;
        if (isAfterCursor(entry.snapshot, after)) matches.push(entry.snapshot);
      }
      matches.sort(compareForList);
      return toListPage(matches.slice(0, limit + 1).map(cloneSnapshot), limit);
    },

    async close() {
      closed = true;
    },
  };

  if (ttlMs !== undefined) {
    repository.purgeExpired = async () => {
      assertOpen();
      let purged = 0;
      for (const [sessionId, entry] of [...entries]) {
        if (entry.expiresAt !== null && entry.expiresAt <= now()) {
          entries.delete(sessionId);
          purged += 1;
        }
      }
      return purged;
    };
  }
  if (historyLimit > 0) {
    repository.history = async (sessionId, historyOptions) => {
      assertOpen();
      assertValidSessionId(sessionId);
      const limit = historyOptions?.limit ?? historyLimit;
      if (!(Number.isInteger(limit) && limit >= 1)) {
        throw new ValidationError('INVALID_INPUT', 'history limit must be a positive integer');
      }
      return (live(sessionId)?.history ?? []).slice(0, limit).map(cloneSnapshot);
    };
  }
  return repository;
}
