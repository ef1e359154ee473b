import { ValidationError } from './errors.js';
import {
  assertValidSessionId,
  assertValidSnapshot,
  canonicalFields,
  parseOrThrow,
  type SessionContext,
  UserIdSchema,
} from './schema.js';
import type { TurnLog } from './turn-log.js';

/** Options of a compare-and-set {@link ContextRepository.save}. */
export interface SaveOptions {
  /**
   * The version the caller read: the save succeeds only if the stored version still equals it.
   * `null` means "the session must not exist yet" (first write).
   */
  expectedVersion: number | null;
  /**
   * The pending turns this snapshot folds in (repositories with the `turnLog` capability): they
   * leave the pending log in the same atomic operation as the write, and their ids stay known so
   * that recording them again is a no-op. Only ids read from `pendingTurns` of the same session.
   * @default [] (no turn folded)
   */
  foldedTurnIds?: string[];
}

/**
 * Conditions of a {@link ContextRepository.delete}. The check and the delete are one atomic
 * operation in the backend.
 */
export interface DeleteOptions {
  /**
   * Delete only when the session is unowned or owned by this user; a session of another user is
   * left alone and the call throws `OWNERSHIP_MISMATCH`. Absent: delete whoever owns it.
   */
  userId?: string;
  /**
   * Delete only when the stored version equals this one; otherwise the call throws
   * `VERSION_CONFLICT`. Absent: whatever the version.
   */
  expectedVersion?: number;
}

/** A page query for {@link ContextRepository.list}. */
export interface ListQuery {
  /** Only sessions owned by this user. */
  userId?: string;
  /**
   * Page size, 1–1000.
   * @default 50
   */
  limit?: number;
  /** The `nextCursor` of the previous page; `null` or absent for the first page. */
  cursor?: string | null;
}

/** One page of sessions, most recently updated first (ties broken by session id, descending). */
export interface ListPage {
  items: SessionContext[];
  /** Pass it back as `cursor` for the next page; `null` on the last page. */
  nextCursor: string | null;
}

/** Optional capabilities a repository declares; the conformance suite tests what is declared. */
export interface RepositoryCapabilities {
  /** Sessions expire a fixed time after their last write; expired ones are invisible. */
  ttl: boolean;
  /** The last N versions of each session are kept and readable through `history`. */
  history: boolean;
  /** Turns are recorded in a pending log and folded by `save`; see {@link TurnLog}. */
  turnLog: boolean;
  /**
   * Custom fields (`snapshot.fields`) are stored and read back. A repository without it refuses to
   * save a snapshot with fields, and a store with `fields` refuses the repository.
   */
  fields: boolean;
}

/**
 * Storage for session snapshots, and nothing else. Every ctx backend implements it; the
 * `@ctx/conformance` suite pins its behaviour.
 *
 * Contract:
 * - `get` returns `null` only when the session is absent (or expired); a failure throws.
 * - `save` is an atomic compare-and-set across processes and machines: it writes only when the
 *   stored version equals `options.expectedVersion` (`null`: the session must not exist) and
 *   otherwise throws a `VERSION_CONFLICT` {@link VersionConflictError} carrying the current
 *   version. The snapshot's `version` must be `(expectedVersion ?? 0) + 1`. Timestamps are stored
 *   as given, to the millisecond. It returns what was stored.
 * - A session's identity survives delete and expiry: versions of one id never restart. A create
 *   over a deleted or expired session is stored at the version after the old one's (so the stored
 *   version may be higher than the snapshot's), and a writer that read the old session can never
 *   write into the new one: it gets `VERSION_CONFLICT`.
 * - `delete` with a `userId` or an `expectedVersion` is one atomic conditional operation.
 * - Every failure is a {@link ContextError}: driver errors are wrapped (`STORAGE_UNAVAILABLE` for
 *   outages, `STORAGE_ERROR` otherwise), never swallowed.
 * - `close` is idempotent and never closes a client the repository did not create; calls after
 *   it throw `CLOSED`.
 */
export interface ContextRepository extends Partial<TurnLog> {
  /** The stored snapshot, or `null` when absent. */
  get(sessionId: string): Promise<SessionContext | null>;
  /** Compare-and-set write; see the interface documentation. */
  save(snapshot: SessionContext, options: SaveOptions): Promise<SessionContext>;
  /**
   * Deletes the session (and its history). `true` when something was deleted, `false` when no live
   * session exists. With conditions (see {@link DeleteOptions}) a mismatch throws and deletes
   * nothing.
   */
  delete(sessionId: string, options?: DeleteOptions): Promise<boolean>;
  /** Keyset-paginated listing, most recently updated first. */
  list(query?: ListQuery): Promise<ListPage>;
  /** Releases what the repository opened itself. Idempotent. */
  close(): Promise<void>;
  /** Optional capabilities; absent means none. */
  readonly capabilities?: Partial<RepositoryCapabilities>;
  /**
   * Deletes expired sessions now and forgets tombstones older than the repository's retention;
   * returns how many expired sessions it deleted. Present when `capabilities.ttl` (repositories
   * built on `@ctx/core/adapter` always have it).
   */
  purgeExpired?(): Promise<number>;
  /**
   * Stored versions of a session, newest first, the current one included (at most `limit`, and at
   * most what the repository keeps). Present when `capabilities.history`.
   */
  history?(sessionId: string, options?: { limit?: number }): Promise<SessionContext[]>;
}

/** Default and maximum page sizes of `list`. */
export const LIST_LIMITS = { defaultLimit: 50, maxLimit: 1000 } as const;

/** A decoded list cursor: the sort key of the last item of the previous page. */
export interface ListCursor {
  updatedAt: number;
  sessionId: string;
}

/** Encodes the position after `last` as an opaque cursor string. */
export function encodeListCursor(last: Pick<SessionContext, 'updatedAt' | 'sessionId'>): string {
  return Buffer.from(JSON.stringify([last.updatedAt.getTime(), last.sessionId]), 'utf8').toString(
    'base64url',
  );
}

/** Decodes a cursor made by {@link encodeListCursor}; throws `INVALID_INPUT` on anything else. */
export function decodeListCursor(cursor: string): ListCursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      Number.isSafeInteger(value[0]) &&
      typeof value[1] === 'string'
    ) {
      assertValidSessionId(value[1]);
      return { updatedAt: value[0] as number, sessionId: value[1] };
    }
  } catch {
    // falls through to the typed error below
  }
  throw new ValidationError(
    'INVALID_INPUT',
    'Invalid list cursor: pass back a nextCursor unchanged',
    {
      issues: [{ path: 'cursor', message: 'not a cursor returned by list()' }],
    },
  );
}

/** A validated list query: what an adapter needs to build its keyset query. */
export interface NormalizedListQuery {
  userId: string | undefined;
  limit: number;
  after: ListCursor | null;
}

/** Validates a {@link ListQuery} and applies defaults; throws `INVALID_INPUT` on bad input. */
export function normalizeListQuery(query: ListQuery = {}): NormalizedListQuery {
  const limit = query.limit ?? LIST_LIMITS.defaultLimit;
  if (!Number.isInteger(limit) || limit < 1 || limit > LIST_LIMITS.maxLimit) {
    throw new ValidationError(
      'INVALID_INPUT',
      `Invalid list limit ${String(limit)}: expected an integer from 1 to ${LIST_LIMITS.maxLimit}`,
      { issues: [{ path: 'limit', message: 'out of range' }] },
    );
  }
  const userId =
    query.userId === undefined ? undefined : parseOrThrow(UserIdSchema, query.userId, 'user id');
  const after = query.cursor ? decodeListCursor(query.cursor) : null;
  return { userId, limit, after };
}

/** Whether `item` sorts after the cursor position in list order (updatedAt desc, sessionId desc). */
export function isAfterCursor(item: SessionContext, after: ListCursor | null): boolean {
  if (!after) return true;
  const time = item.updatedAt.getTime();
  return time < after.updatedAt || (time === after.updatedAt && item.sessionId < after.sessionId);
}

/** List order: most recently updated first, then session id descending. */
export function compareForList(a: SessionContext, b: SessionContext): number {
  const byTime = b.updatedAt.getTime() - a.updatedAt.getTime();
  if (byTime !== 0) return byTime;
  return a.sessionId < b.sessionId ? 1 : a.sessionId > b.sessionId ? -1 : 0;
}

/**
 * Builds a page from up to `limit + 1` items already in list order: an adapter fetches one extra
 * row to know whether another page exists.
 */
export function toListPage(items: SessionContext[], limit: number): ListPage {
  const page = items.slice(0, limit);
  const last = page[page.length - 1];
  return { items: page, nextCursor: items.length > limit && last ? encodeListCursor(last) : null };
}

/**
 * Validates the arguments of a compare-and-set save (a complete valid snapshot, a sane
 * `expectedVersion`, and `version === (expectedVersion ?? 0) + 1`). Every adapter calls it first.
 */
export function assertValidSave(snapshot: SessionContext, options: SaveOptions): void {
  assertValidSnapshot(snapshot);
  const expected = options?.expectedVersion;
  if (expected !== null && (!Number.isSafeInteger(expected) || (expected as number) < 1)) {
    throw new ValidationError(
      'INVALID_INPUT',
      `Invalid expectedVersion ${String(expected)}: expected null (create) or a positive integer`,
      { issues: [{ path: 'expectedVersion', message: 'not null or a positive integer' }] },
    );
  }
  if (snapshot.version !== (expected ?? 0) + 1) {
    throw new ValidationError(
      'INVALID_INPUT',
      `Snapshot version ${snapshot.version} must be expectedVersion + 1 (${(expected ?? 0) + 1})`,
      { issues: [{ path: 'version', message: 'must be expectedVersion + 1' }] },
    );
  }
}

/**
 * A deep copy, so that callers never share mutable arrays or dates with a repository. `fields` is
 * always present (`null` when none) and in canonical key order (see `canonicalFields`).
 */
export function cloneSnapshot(snapshot: SessionContext): SessionContext {
  return {
    sessionId: snapshot.sessionId,
    userId: snapshot.userId,
    summary: snapshot.summary,
    goal: snapshot.goal,
    plan: snapshot.plan ? [...snapshot.plan] : null,
    progress: snapshot.progress ? [...snapshot.progress] : null,
    createdAt: new Date(snapshot.createdAt.getTime()),
    updatedAt: new Date(snapshot.updatedAt.getTime()),
    version: snapshot.version,
    fields: canonicalFields(snapshot.fields),
  };
}
