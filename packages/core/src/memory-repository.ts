import type { ContextDriver } from './adapter/driver.js';
import { createDriverRepository, type DriverRepository } from './adapter/driver-repository.js';
import {
  type RepositoryOptions,
  resolveRepositorySettings,
} from './adapter/repository-settings.js';
import { cloneSnapshot, compareForList, isAfterCursor } from './repository.js';
import type { SessionContext } from './schema.js';

/**
 * Options of {@link createMemoryRepository}: the options every repository shares (`migrate` is
 * accepted for uniformity; there is nothing to migrate).
 */
export interface MemoryRepositoryOptions extends RepositoryOptions {}

interface Entry {
  /** The live snapshot; `null` for a tombstone. */
  snapshot: SessionContext | null;
  /** The last version the id had (the snapshot's, or the deleted one's). */
  version: number;
  /** Live until then (epoch ms); a tombstone's is the time it was made. */
  expiresAt: number | null;
  history: SessionContext[];
}

const isLive = (
  entry: Entry | undefined,
  now: number,
): entry is Entry & { snapshot: SessionContext } =>
  entry !== undefined &&
  entry.snapshot !== null &&
  (entry.expiresAt === null || entry.expiresAt > now);

/** The memory driver: a process-local map. Single-threaded JavaScript makes every call atomic. */
function createMemoryDriver(): ContextDriver {
  const entries = new Map<string, Entry>();
  const tombstone = (entry: Entry, at: number) => {
    entry.snapshot = null;
    entry.history = [];
    entry.expiresAt = at;
  };

  return {
    specVersion: 1,
    name: 'memory',
    supports: { ttl: true, history: true },

    read({ sessionId, now }) {
      const entry = entries.get(sessionId);
      return isLive(entry, now) ? cloneSnapshot(entry.snapshot) : null;
    },

    write({ snapshot, expectedVersion, now, expiresAt, historyLimit }) {
      const entry = entries.get(snapshot.sessionId);
      const live = isLive(entry, now);
      const currentVersion = live ? entry.version : null;
      if (currentVersion !== expectedVersion) return { written: false, currentVersion };
      const version = live || !entry ? snapshot.version : entry.version + 1;
      const stored = { ...cloneSnapshot(snapshot), version };
      const history =
        historyLimit > 0 ? [stored, ...(live ? entry.history : [])].slice(0, historyLimit) : [];
      entries.set(snapshot.sessionId, { snapshot: stored, version, expiresAt, history });
      return { written: true, version };
    },

    remove({ sessionId, userId, expectedVersion, now }) {
      const entry = entries.get(sessionId);
      if (!isLive(entry, now)) return { status: 'absent' };
      const owner = entry.snapshot.userId;
      if (userId !== undefined && owner !== null && owner !== userId) {
        return { status: 'owner-mismatch' };
      }
      if (expectedVersion !== undefined && expectedVersion !== entry.version) {
        return { status: 'version-mismatch', currentVersion: entry.version };
      }
      tombstone(entry, now);
      return { status: 'removed' };
    },

    scan({ userId, after, limit, now }) {
      const matches: SessionContext[] = [];
      for (const entry of entries.values()) {
        if (!isLive(entry, now)) continue;
        if (userId !== undefined && entry.snapshot.userId !== userId) continue;
        if (isAfterCursor(entry.snapshot, after)) matches.push(entry.snapshot);
      }
      return matches.sort(compareForList).slice(0, limit).map(cloneSnapshot);
    },

    purge({ now, tombstonesBefore }) {
      let purged = 0;
      for (const [sessionId, entry] of entries) {
        if (entry.snapshot !== null && entry.expiresAt !== null && entry.expiresAt <= now) {
          tombstone(entry, entry.expiresAt);
          purged += 1;
        }
        if (entry.snapshot === null && (entry.expiresAt ?? 0) < tombstonesBefore) {
          entries.delete(sessionId);
        }
      }
      return purged;
    },

    history({ sessionId, limit, now }) {
      const entry = entries.get(sessionId);
      return isLive(entry, now) ? entry.history.slice(0, limit).map(cloneSnapshot) : [];
    },
  };
}

/**
 * The reference {@link ContextRepository}: a process-local map with real compare-and-set
 * semantics, conditional deletes, tombstones, TTL and history. For tests, demos and single-process
 * tools; nothing survives the process.
 *
 * @example
 * ```ts
 * const store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
 * ```
 */
export function createMemoryRepository(options: MemoryRepositoryOptions = {}): DriverRepository {
  const settings = resolveRepositorySettings('memory', options);
  return createDriverRepository(createMemoryDriver(), settings);
}
