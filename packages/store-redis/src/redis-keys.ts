import { ValidationError } from '@ctx/core';
import type { ListCursor } from '@ctx/core/adapter';

/** Key prefix used when none is given. */
export const DEFAULT_REDIS_KEY_PREFIX = 'ctx';

const MAX_KEY_PREFIX_LENGTH = 64;

/**
 * The Redis key names one repository uses. Every key starts with `{<keyPrefix>}:`, so all keys of
 * one prefix hash to the same Redis Cluster slot and every script touches a single slot.
 *
 * | key | type | holds |
 * |---|---|---|
 * | `{ctx}:s:<sessionId>` | string | the snapshot as JSON (expires with the TTL) |
 * | `{ctx}:h:<sessionId>` | list | the last N snapshots as JSON, newest first (same TTL) |
 * | `{ctx}:u:<userId>` | sorted set | list index of one user's sessions |
 * | `{ctx}:all` | sorted set | list index of every session |
 * | `{ctx}:meta` | hash | sessionId → `[version, indexMember, userId]` (index bookkeeping), or the tombstone `[version, false, false, deletedAtMs]` |
 * | `{ctx}:exp` | sorted set | sessionId scored by expiry time in ms (only with a TTL) |
 * | `{ctx}:tomb` | sorted set | sessionId of every tombstone, scored by the time it was made (ms) |
 * | `{ctx}:t:<sessionId>` | hash | turn log: turnId → pending `[sequence, recordedAt, userId, messages]` or folded `[sequence]` |
 * | `{ctx}:tp:<sessionId>` | sorted set | the pending turn ids, scored by sequence |
 * | `{ctx}:tf:<sessionId>` | sorted set | the folded turn ids, scored by when they were folded (ms) |
 * | `{ctx}:pending` | sorted set | sessionId of every session with pending turns, scored by its oldest one's recordedAt (ms) |
 * | `{ctx}:folded` | sorted set | sessionId of every session with folded turn ids, scored by its oldest fold time (ms) |
 * | `{ctx}:leases` | sorted set | sessionId of every lease, scored by its expiry time (ms, the repository's clock) |
 * | `{ctx}:holders` | hash | sessionId → the holder of its lease |
 * | `{ctx}:turnseq` | string | the last turn sequence handed out (one counter for the prefix) |
 *
 * @example
 * ```ts
 * const keys = createRedisKeyLayout('ctx');
 * keys.session('abc'); // '{ctx}:s:abc' — inspect with `redis-cli GET '{ctx}:s:abc'`
 * ```
 */
export interface RedisKeyLayout {
  /** The key prefix, without braces. */
  readonly keyPrefix: string;
  /** What every key starts with: `{<keyPrefix>}:`. */
  readonly base: string;
  /** The JSON snapshot of a session. */
  session(sessionId: string): string;
  /** The history list of a session. */
  history(sessionId: string): string;
  /** The list index of one user's sessions. */
  user(userId: string): string;
  /** The list index of all sessions. */
  readonly all: string;
  /**
   * The bookkeeping hash: sessionId → `[version, indexMember, owner]` of the session last written,
   * kept after it expires, or `[version, false, false, deletedAtMs]` once it is a tombstone. It
   * never expires: it is what keeps versions counting across delete and expiry.
   */
  readonly meta: string;
  /** The expiry schedule used by `purgeExpired`. */
  readonly expiry: string;
  /** The tombstones, scored by when they were made, so `purgeExpired` finds the old ones. */
  readonly tombstones: string;
  /**
   * The turn log of a session: turnId → `[sequence, recordedAt, userId, messages]` while pending,
   * `[sequence]` once folded (kept so that recording the id again is a duplicate).
   */
  turns(sessionId: string): string;
  /** The pending turn ids of a session, scored by sequence (the order `pendingTurns` reads). */
  pendingTurns(sessionId: string): string;
  /** The folded turn ids of a session, scored by when they were folded, for `purgeExpired`. */
  foldedTurns(sessionId: string): string;
  /** Sessions with pending turns, scored by the recordedAt of their oldest pending turn. */
  readonly pendingSessions: string;
  /** Sessions with folded turn ids, scored by their oldest fold time, for `purgeExpired`. */
  readonly foldedSessions: string;
  /** Session leases, scored by when they expire (the repository's clock, epoch ms). */
  readonly leases: string;
  /** sessionId → the holder of its lease. */
  readonly leaseHolders: string;
  /** The turn sequence counter: every recorded turn of the prefix takes the next value. */
  readonly turnSequence: string;
}

/**
 * Validates a key prefix: 1–64 characters, no braces (they would break the hash tag), no
 * whitespace or control characters, and none of the glob characters `*?[]\` (so that
 * `SCAN MATCH '{prefix}:*'` finds exactly this prefix's keys).
 */
export function assertValidKeyPrefix(keyPrefix: unknown): asserts keyPrefix is string {
  if (
    typeof keyPrefix !== 'string' ||
    keyPrefix.length < 1 ||
    keyPrefix.length > MAX_KEY_PREFIX_LENGTH ||
    /[{}*?[\]\\\s\u0000-\u001f\u007f]/.test(keyPrefix)
  ) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Invalid Redis repository option keyPrefix ${JSON.stringify(keyPrefix)}: expected 1–${MAX_KEY_PREFIX_LENGTH} characters without braces, whitespace, control characters or any of *?[]\\`,
      { issues: [{ path: 'keyPrefix', message: 'not a valid key prefix' }] },
    );
  }
}

/** The key names of one prefix; see {@link RedisKeyLayout}. */
export function createRedisKeyLayout(keyPrefix: string = DEFAULT_REDIS_KEY_PREFIX): RedisKeyLayout {
  assertValidKeyPrefix(keyPrefix);
  const base = `{${keyPrefix}}:`;
  return {
    keyPrefix,
    base,
    session: (sessionId) => `${base}s:${sessionId}`,
    history: (sessionId) => `${base}h:${sessionId}`,
    user: (userId) => `${base}u:${userId}`,
    all: `${base}all`,
    meta: `${base}meta`,
    expiry: `${base}exp`,
    tombstones: `${base}tomb`,
    turns: (sessionId) => `${base}t:${sessionId}`,
    pendingTurns: (sessionId) => `${base}tp:${sessionId}`,
    foldedTurns: (sessionId) => `${base}tf:${sessionId}`,
    pendingSessions: `${base}pending`,
    foldedSessions: `${base}folded`,
    leases: `${base}leases`,
    leaseHolders: `${base}holders`,
    turnSequence: `${base}turnseq`,
  };
}

// Date values span ±8.64e15 ms. Non-negative times are written as "1" + 16 digits, negative ones
// as "0" + 16 digits of (time + 8.64e15): fixed width, so byte order is time order, and every
// intermediate value stays an exact integer.
const DATE_RANGE_MS = 8_640_000_000_000_000;
const SORT_KEY_LENGTH = 17;

function sortKey(updatedAtMs: number): string {
  return updatedAtMs >= 0
    ? `1${String(updatedAtMs).padStart(SORT_KEY_LENGTH - 1, '0')}`
    : `0${String(updatedAtMs + DATE_RANGE_MS).padStart(SORT_KEY_LENGTH - 1, '0')}`;
}

/**
 * The member of a session in the list indexes: `<17-character time key>:<sessionId>`. All members
 * have score 0, so the sorted set orders them by bytes: by `updatedAt`, then by session id.
 */
export function encodeIndexMember(updatedAtMs: number, sessionId: string): string {
  return `${sortKey(updatedAtMs)}:${sessionId}`;
}

/** The exclusive upper bound for `ZREVRANGEBYLEX` that starts a page after `cursor`. */
export function indexUpperBound(cursor: ListCursor | null): string {
  return cursor ? `(${encodeIndexMember(cursor.updatedAt, cursor.sessionId)}` : '+';
}
