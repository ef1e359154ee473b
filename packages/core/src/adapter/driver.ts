import type { ListCursor } from '../repository.js';
import type { SessionContext } from '../schema.js';
import type { TurnInput } from '../turn-log.js';

/**
 * The version of the driver spec this copy of `@ctx/core` implements. A driver states the version
 * it was written against in {@link ContextDriver.specVersion}; {@link createDriverRepository}
 * refuses a driver written for another version with `INVALID_CONFIG`, so a mismatch is found when
 * the repository is built, not by a wrong answer later.
 */
export const DRIVER_SPEC_VERSION = 1;

/** A value or a promise of it: drivers on synchronous clients (better-sqlite3) answer directly. */
export type Awaitable<T> = T | Promise<T>;

/** {@link ContextDriver.read}: the live snapshot of one session. */
export interface DriverReadRequest {
  /** A valid session id (already checked). */
  sessionId: string;
  /** The current time in epoch milliseconds: a session whose expiry is at or before it is absent. */
  now: number;
}

/** {@link ContextDriver.write}: one atomic compare-and-set. */
export interface DriverWriteRequest {
  /**
   * The snapshot to store, already validated. Its `version` is `(expectedVersion ?? 0) + 1`; on a
   * create over a tombstone the driver stores a higher one (see {@link ContextDriver.write}).
   */
  snapshot: SessionContext;
  /** The live version the writer read, or `null` when it found no live session. */
  expectedVersion: number | null;
  /** The current time in epoch milliseconds. */
  now: number;
  /** When the written session expires (epoch milliseconds), or `null` when it never does. */
  expiresAt: number | null;
  /** How many versions to keep for `history` (the written one included); 0 keeps none. */
  historyLimit: number;
  /**
   * Turn-log drivers: the pending turns this write folds. When written, they leave the pending
   * log in the same atomic operation and are remembered as folded (so recording them again is a
   * duplicate) until a purge after the tombstone retention. Empty when nothing is folded.
   */
  foldedTurnIds: string[];
}

/** What {@link ContextDriver.write} did. */
export type DriverWriteResult =
  /** Stored, at `version` (the snapshot's own version, or higher for a create over a tombstone). */
  | { written: true; version: number }
  /** Nothing was stored: the live version is `currentVersion` (`null`: no live session). */
  | { written: false; currentVersion: number | null };

/** {@link ContextDriver.remove}: one atomic conditional delete. */
export interface DriverRemoveRequest {
  /** A valid session id (already checked). */
  sessionId: string;
  /**
   * Delete only when the live session is unowned or owned by this user. `undefined`: whoever owns
   * it (trusted, internal access).
   */
  userId: string | undefined;
  /** Delete only when the live version equals this one. `undefined`: whatever the version. */
  expectedVersion: number | undefined;
  /** The current time in epoch milliseconds. */
  now: number;
}

/** What {@link ContextDriver.remove} did. */
export type DriverRemoveResult =
  | { status: 'removed' }
  /** No live session (never written, deleted, or expired). */
  | { status: 'absent' }
  /** The live session belongs to another user; nothing was deleted. */
  | { status: 'owner-mismatch' }
  /** The live session is at another version; nothing was deleted. */
  | { status: 'version-mismatch'; currentVersion: number };

/** {@link ContextDriver.scan}: one keyset page in list order. */
export interface DriverScanRequest {
  /** Only sessions owned by this user; `undefined`: every session. */
  userId: string | undefined;
  /** Start strictly after this position; `null`: from the newest session. */
  after: ListCursor | null;
  /** At most this many sessions (the helper asks for one more than the page size). */
  limit: number;
  /** The current time in epoch milliseconds; expired sessions are left out. */
  now: number;
}

/** {@link ContextDriver.purge}: reclaim space. */
export interface DriverPurgeRequest {
  /** The current time in epoch milliseconds. */
  now: number;
  /**
   * Tombstones made before this time (epoch milliseconds) may be removed for good; newer ones must
   * stay, because they are what keeps a stale writer out.
   */
  tombstonesBefore: number;
}

/** {@link ContextDriver.history}: stored versions, newest first. */
export interface DriverHistoryRequest {
  /** A valid session id (already checked). */
  sessionId: string;
  /** At most this many versions (already capped at the repository's `historyLimit`). */
  limit: number;
  /** The repository's `historyLimit`: versions older than `current - historyLimit` do not count. */
  historyLimit: number;
  /** The current time in epoch milliseconds; an expired session has no history. */
  now: number;
}

/** {@link ContextDriver.recordTurn}: append one turn to a session's pending log. */
export interface DriverRecordTurnRequest {
  sessionId: string;
  /** Validated: a turn id, the sender, 1–1000 valid messages. */
  turn: TurnInput;
  /** The current time in epoch milliseconds: the turn's `recordedAt`. */
  now: number;
  /** Refuse (`full`) when the session already has this many pending turns. */
  maxPending: number;
}

/** What {@link ContextDriver.recordTurn} did. */
export type DriverRecordTurnResult =
  /** Appended at `sequence` (greater than every sequence the session's log has used). */
  | { status: 'recorded'; sequence: number }
  /** The id is already pending or folded; nothing was written. `sequence` is its own. */
  | { status: 'duplicate'; sequence: number }
  /** The session has `pending` pending turns, the maximum; nothing was written. */
  | { status: 'full'; pending: number };

/** A turn as a driver returns it: {@link RecordedTurn} with `recordedAt` in epoch ms. */
export interface DriverTurn extends TurnInput {
  sequence: number;
  recordedAt: number;
}

/** {@link ContextDriver.lease}: take or renew a session's lease. */
export interface DriverLeaseRequest {
  sessionId: string;
  holder: string;
  /** The lease expires this long after `now` unless renewed. */
  ttlMs: number;
  now: number;
}

/** {@link ContextDriver.pendingSessions}: sessions a drain should fold. */
export interface DriverPendingSessionsRequest {
  /** Only sessions whose oldest pending turn was recorded at or before this time (epoch ms). */
  recordedBefore: number;
  limit: number;
  /** Sessions whose lease is live at `now` are left out. */
  now: number;
}

/** How a driver classifies a driver error; see {@link ContextDriver.classifyError}. */
export interface DriverErrorClass {
  /**
   * `STORAGE_UNAVAILABLE`: an outage worth retrying (connection refused or lost, timeout, lock
   * contention). `STORAGE_ERROR`: the backend refused. `SCHEMA_MISMATCH`: not a ctx schema, or a
   * newer one.
   */
  code: 'STORAGE_UNAVAILABLE' | 'STORAGE_ERROR' | 'SCHEMA_MISMATCH';
  /** What happened and what to do, in one sentence (the helper prefixes the action). */
  message: string;
}

/**
 * A storage backend for session contexts, reduced to what is specific to it. Turn one into a
 * `ContextRepository` with {@link createDriverRepository}, which does everything every backend
 * would otherwise repeat: argument validation, the closed state, list cursors and page sizes, the
 * TTL/history/tombstone settings, and wrapping what the driver throws into typed errors.
 *
 * Rules every method follows:
 * - Arguments arrive validated; a driver never validates ids, snapshots or cursors again.
 * - Returned snapshots are fresh objects the caller may change (decode a row, or copy).
 * - `now` is the repository's clock. A backend with its own native expiry (Redis key TTLs) may use
 *   it instead, as long as the results agree.
 * - A thrown error is wrapped by the helper (see {@link classifyError}); throw driver errors as
 *   they are. Throw a `ContextError` only for what the driver alone can know (a corrupt row is
 *   `STORAGE_ERROR`).
 *
 * Session identity: a session is *live* from its create until it is deleted or expires. When it
 * stops being live its id keeps a **tombstone** holding its last version, until `purge` may drop
 * it (after the repository's tombstone retention). A create over a tombstone stores the version
 * after the tombstone's, so a writer that read the old session can never match a version of the
 * new one: versions of one id never restart while its tombstone lasts.
 *
 * @example
 * ```ts
 * export function createMyRepository(options: MyRepositoryOptions): ContextRepository {
 *   const settings = resolveRepositorySettings('MyDB', options);
 *   const client = options.client;
 *   return createDriverRepository(createMyDriver(client, settings), settings);
 * }
 * ```
 */
export interface ContextDriver {
  /**
   * The spec version the driver was written against, as a literal (`specVersion: 1`), not the
   * imported {@link DRIVER_SPEC_VERSION}: the literal is what lets a newer core refuse it.
   */
  readonly specVersion: number;
  /** The backend's name for messages, e.g. `'SQLite'` ("Could not save a session (SQLite): …"). */
  readonly name: string;
  /**
   * Optional capabilities the driver can provide; the repository enables `ttl` and `history` from
   * settings, and `turnLog` whenever the driver supports it (then the five turn-log methods are
   * required).
   */
  readonly supports: {
    readonly ttl: boolean;
    readonly history: boolean;
    readonly turnLog?: boolean;
    /**
     * Custom fields: the driver stores `snapshot.fields` (a JSON object, or null) as given and
     * returns it on every read, e.g. in one JSON column. Without it, saving a snapshot with fields
     * is refused (`INVALID_INPUT`) and reads return `fields: null`.
     */
    readonly fields?: boolean;
  };

  /**
   * Prepares the backend before the first operation (migrations, loading scripts). Called once,
   * lazily; when it fails, the next operation calls it again.
   */
  init?(): Awaitable<void>;

  /** The live snapshot, or `null` when absent, deleted or expired. */
  read(request: DriverReadRequest): Awaitable<SessionContext | null>;

  /**
   * Atomic compare-and-set across processes and machines, as one backend operation (a single
   * statement, transaction or script):
   * - `expectedVersion` is a number: store the snapshot only when a live session has exactly that
   *   version.
   * - `expectedVersion` is `null`: store it only when there is no live session. When the id holds a
   *   tombstone or an expired session, store version `last + 1` instead of the snapshot's (and report
   *   it); otherwise the snapshot's version (1).
   * - The stored row replaces everything (owner, content, timestamps, expiry). With `historyLimit >
   *   0` the written version joins the history and only the newest `historyLimit` are kept; a create
   *   starts a new history.
   */
  write(request: DriverWriteRequest): Awaitable<DriverWriteResult>;

  /**
   * Atomic conditional delete: removes the live session when it matches `userId` and
   * `expectedVersion`, leaving a tombstone with its version (and no content, no history). A check
   * followed by an unconditional delete is not allowed: it deletes a session created in between.
   */
  remove(request: DriverRemoveRequest): Awaitable<DriverRemoveResult>;

  /**
   * Live sessions in list order — `updatedAt` descending, then `sessionId` descending (compare
   * UTF-8 bytes or UTF-16 code units, never a locale collation) — strictly after `after`.
   */
  scan(request: DriverScanRequest): Awaitable<SessionContext[]>;

  /**
   * Turns sessions expired at `now` into tombstones (content and history removed) and removes
   * tombstones made before `tombstonesBefore`. Returns how many expired sessions it turned into
   * tombstones.
   */
  purge(request: DriverPurgeRequest): Awaitable<number>;

  /**
   * Stored versions of a live session, newest first, the current one included. Required when
   * `supports.history`.
   */
  history?(request: DriverHistoryRequest): Awaitable<SessionContext[]>;

  /**
   * Turn log: appends a turn, atomically and idempotently by `turn.turnId` (per session), with the
   * pending bound checked in the same atomic operation. The sequence grows per session.
   */
  recordTurn?(request: DriverRecordTurnRequest): Awaitable<DriverRecordTurnResult>;

  /** Turn log: the session's pending turns, oldest (lowest sequence) first, at most `limit`. */
  readPending?(request: { sessionId: string; limit: number }): Awaitable<DriverTurn[]>;

  /**
   * Turn log: takes or renews the session's lease, atomically: `true` when `holder` holds it after
   * the call (it was free, expired at `now`, or its own), `false` when another holder's is live.
   */
  lease?(request: DriverLeaseRequest): Awaitable<boolean>;

  /** Turn log: ends `holder`'s lease of the session; anyone else's lease is left alone. */
  releaseLease?(request: { sessionId: string; holder: string }): Awaitable<void>;

  /**
   * Turn log: ids of sessions with pending turns recorded at or before `recordedBefore` and no live
   * lease, oldest pending turn first. `remove` drops a session's pending turns, folded ids and
   * lease when it removes the session, or when it finds none live and the delete names neither a
   * user nor a version (a delete on behalf of a user never drops turns other users sent for a
   * session not created yet); `purge` forgets folded ids older than `tombstonesBefore`.
   */
  pendingSessions?(request: DriverPendingSessionsRequest): Awaitable<string[]>;

  /**
   * Classifies an error a driver call threw. Return `undefined` for errors it does not recognise
   * (they become `STORAGE_ERROR` with their own message).
   */
  classifyError?(error: unknown): DriverErrorClass | undefined;

  /**
   * Creates or upgrades the schema now, whatever the `migrate` setting (an operator's explicit
   * step). When present, the repository exposes it as `migrate()`, with the closed check and error
   * wrapping of every other call; what it resolves to is the driver's business (e.g. which
   * migrations it applied).
   */
  migrate?(): Awaitable<unknown>;

  /** Releases what the driver opened itself; never a client it was given. Called at most once. */
  close?(): Awaitable<void>;
}
