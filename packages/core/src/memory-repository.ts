import type { ContextDriver, DriverTurn } from './adapter/driver.js';
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

interface TurnLogEntry {
  /** Pending turns, oldest first. */
  pending: DriverTurn[];
  /** Folded turn ids → their sequence and when they were folded (epoch ms). */
  folded: Map<string, { sequence: number; foldedAt: number }>;
  nextSequence: number;
  lease: { holder: string; expiresAt: number } | null;
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
  const logs = new Map<string, TurnLogEntry>();
  const logOf = (sessionId: string): TurnLogEntry => {
    let log = logs.get(sessionId);
    if (!log) {
      log = { pending: [], folded: new Map(), nextSequence: 1, lease: null };
      logs.set(sessionId, log);
    }
    return log;
  };
  const copyTurn = (turn: DriverTurn): DriverTurn => ({
    ...turn,
    messages: turn.messages.map((message) => ({ ...message })),
  });
  const tombstone = (entry: Entry, at: number) => {
    entry.snapshot = null;
    entry.history = [];
    entry.expiresAt = at;
  };

  return {
    specVersion: 1,
    name: 'memory',
    supports: { ttl: true, history: true, turnLog: true, fields: true },

    read({ sessionId, now }) {
      const entry = entries.get(sessionId);
      return isLive(entry, now) ? cloneSnapshot(entry.snapshot) : null;
    },

    write({ snapshot, expectedVersion, now, expiresAt, historyLimit, foldedTurnIds }) {
      const entry = entries.get(snapshot.sessionId);
      const live = isLive(entry, now);
      const currentVersion = live ? entry.version : null;
      if (currentVersion !== expectedVersion) return { written: false, currentVersion };
      const version = live || !entry ? snapshot.version : entry.version + 1;
      const stored = { ...cloneSnapshot(snapshot), version };
      const history =
        historyLimit > 0 ? [stored, ...(live ? entry.history : [])].slice(0, historyLimit) : [];
      entries.set(snapshot.sessionId, { snapshot: stored, version, expiresAt, history });
      if (foldedTurnIds.length > 0) {
        const log = logOf(snapshot.sessionId);
        const folding = new Set(foldedTurnIds);
        for (const turn of log.pending) {
          if (folding.has(turn.turnId)) {
            log.folded.set(turn.turnId, { sequence: turn.sequence, foldedAt: now });
          }
        }
        log.pending = log.pending.filter((turn) => !folding.has(turn.turnId));
      }
      return { written: true, version };
    },

    remove({ sessionId, userId, expectedVersion, now }) {
      const entry = entries.get(sessionId);
      if (!isLive(entry, now)) {
        // Turns recorded for a session that has no live snapshot go with an unconditional
        // (trusted) delete; a delete on behalf of a user must not drop turns others sent.
        if (userId === undefined && expectedVersion === undefined) logs.delete(sessionId);
        return { status: 'absent' };
      }
      const owner = entry.snapshot.userId;
      if (userId !== undefined && owner !== null && owner !== userId) {
        return { status: 'owner-mismatch' };
      }
      if (expectedVersion !== undefined && expectedVersion !== entry.version) {
        return { status: 'version-mismatch', currentVersion: entry.version };
      }
      tombstone(entry, now);
      logs.delete(sessionId);
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
      for (const [sessionId, log] of logs) {
        for (const [turnId, folded] of log.folded) {
          if (folded.foldedAt < tombstonesBefore) log.folded.delete(turnId);
        }
        if (log.pending.length === 0 && log.folded.size === 0 && log.lease === null) {
          logs.delete(sessionId);
        }
      }
      return purged;
    },

    history({ sessionId, limit, now }) {
      const entry = entries.get(sessionId);
      return isLive(entry, now) ? entry.history.slice(0, limit).map(cloneSnapshot) : [];
    },

    recordTurn({ sessionId, turn, now, maxPending }) {
      const log = logOf(sessionId);
      const known =
        log.pending.find((pending) => pending.turnId === turn.turnId) ??
        log.folded.get(turn.turnId);
      if (known) return { status: 'duplicate', sequence: known.sequence };
      if (log.pending.length >= maxPending) return { status: 'full', pending: log.pending.length };
      const sequence = log.nextSequence;
      log.nextSequence += 1;
      log.pending.push(copyTurn({ ...turn, sequence, recordedAt: now }));
      return { status: 'recorded', sequence };
    },

    readPending({ sessionId, limit }) {
      return (logs.get(sessionId)?.pending ?? []).slice(0, limit).map(copyTurn);
    },

    lease({ sessionId, holder, ttlMs, now }) {
      const log = logOf(sessionId);
      if (log.lease && log.lease.holder !== holder && log.lease.expiresAt > now) return false;
      log.lease = { holder, expiresAt: now + ttlMs };
      return true;
    },

    releaseLease({ sessionId, holder }) {
      const log = logs.get(sessionId);
      if (log?.lease?.holder === holder) log.lease = null;
    },

    pendingSessions({ recordedBefore, limit, now }) {
      const due: Array<[string, number]> = [];
      for (const [sessionId, log] of logs) {
        const oldest = log.pending[0];
        if (!oldest || oldest.recordedAt > recordedBefore) continue;
        if (log.lease && log.lease.expiresAt > now) continue;
        due.push([sessionId, oldest.recordedAt]);
      }
      return due
        .sort((a, b) => a[1] - b[1])
        .slice(0, limit)
        .map(([sessionId]) => sessionId);
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
