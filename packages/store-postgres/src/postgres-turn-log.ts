import { type Message, StorageError } from '@ctx/core';
import type { DriverTurn } from '@ctx/core/adapter';
import type { Row } from './postgres-client.js';
import type { TableNames } from './postgres-schema.js';
import { at } from './postgres-sql.js';

// First key of the two-key advisory lock that serialises the records of one session: "ctxt" in
// ASCII, apart from the migrations' "ctx1" and from other apps' locks.
const TURN_LOCK_NAMESPACE = 0x63747874;

/**
 * The turn log's statements of one repository, built once from its table names. Folding is part
 * of the compare-and-set write, and dropping a session's log part of its delete (see
 * `buildStatements`); these are the rest.
 */
export interface TurnLogStatements {
  /**
   * Takes the transaction-scoped advisory lock of session `$1`: records of one session run one
   * at a time, so the pending bound holds. Released by the transaction's end.
   */
  lock: string;
  /**
   * Run after {@link lock}, in the same transaction. Returns `duplicate` (the sequence of the id
   * already recorded, pending or folded), `sequence` (the new turn's, when recorded) and
   * `pending` (the session's pending count before it). `$1` session id, `$2` turn id, `$3` user id,
   * `$4` messages (JSON text), `$5` now, `$6` maxPending.
   */
  record: string;
  /** Pending turns, lowest sequence first. `$1` session id, `$2` limit. */
  readPending: string;
  /**
   * Take or renew the lease; returns `taken`. `$1` session id, `$2` holder, `$3` expiry, `$4` now.
   */
  lease: string;
  /** End the lease of holder `$2` on session `$1`. */
  releaseLease: string;
  /**
   * Sessions with a pending turn recorded at or before `$1` and no lease live at `$3`, oldest
   * pending turn first; `$2` limit.
   */
  pendingSessions: string;
  /**
   * Forget folded turns folded before `$2` and leases expired at `$1` (the purge's second
   * statement). Skips rows another operation has locked: they are being deleted or renewed.
   */
  forget: string;
}

/** Builds the turn log's SQL for the tables in `names`. */
export function buildTurnLogStatements(names: TableNames): TurnLogStatements {
  const { qualifiedTurns: turns, qualifiedLeases: leases, display } = names;
  return {
    // The key names the table as well as the session: repositories on other tables, or other
    // schemas, never wait for each other. A hash collision only makes two sessions take turns.
    lock: `SELECT pg_advisory_xact_lock(${TURN_LOCK_NAMESPACE}, hashtext('${display}:' || $1::text))`,

    // Under the lock no other record of the session runs, and READ COMMITTED gives this statement
    // a snapshot taken after the lock was granted: the known id and the pending count are the
    // newest, and nothing can be appended between the check and the insert. A fold or a delete
    // that commits meanwhile only lowers the count. The primary key on (session_id, turn_id)
    // stays the last word on duplicates.
    record: `WITH known AS (
        SELECT sequence FROM ${turns} WHERE session_id = $1::text AND turn_id = $2::text
      ), pending AS (
        SELECT count(*)::int AS count FROM ${turns} WHERE session_id = $1::text AND folded_at IS NULL
      ), recorded AS (
        INSERT INTO ${turns} (session_id, turn_id, user_id, messages, recorded_at)
        SELECT $1::text, $2::text, $3::text, $4::jsonb, ${at('$5')}
        WHERE NOT EXISTS (SELECT 1 FROM known) AND (SELECT count FROM pending) < $6::bigint
        RETURNING sequence
      )
      SELECT (SELECT sequence FROM known) AS duplicate, (SELECT sequence FROM recorded) AS sequence,
        (SELECT count FROM pending) AS pending`,

    readPending: `SELECT turn_id, user_id, messages, sequence,
        (extract(epoch FROM recorded_at) * 1000)::float8 AS recorded_at_ms
      FROM ${turns} WHERE session_id = $1::text AND folded_at IS NULL
      ORDER BY sequence LIMIT $2::bigint`,

    // INSERT … ON CONFLICT DO UPDATE … WHERE decides on the newest committed lease, locked: of
    // holders racing for a free lease exactly one inserts, the others find its live lease.
    lease: `WITH taken AS (
        INSERT INTO ${leases} AS l (session_id, holder, expires_at)
        VALUES ($1::text, $2::text, ${at('$3')})
        ON CONFLICT (session_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
        WHERE l.holder = excluded.holder OR l.expires_at <= ${at('$4')}
        RETURNING 1
      )
      SELECT EXISTS (SELECT 1 FROM taken) AS taken`,

    releaseLease: `WITH released AS (
        DELETE FROM ${leases} WHERE session_id = $1::text AND holder = $2::text RETURNING 1
      )
      SELECT count(*)::int AS released FROM released`,

    // A session's oldest pending turn is at or before `$1` exactly when any of its pending turns
    // is, and then it is among them: filtering first keeps the scan to the turns that are due.
    pendingSessions: `SELECT due.session_id FROM (
        SELECT session_id, min(recorded_at) AS oldest FROM ${turns}
        WHERE folded_at IS NULL AND recorded_at <= ${at('$1')}
        GROUP BY session_id
      ) due
      WHERE NOT EXISTS (
        SELECT 1 FROM ${leases} l WHERE l.session_id = due.session_id AND l.expires_at > ${at('$3')}
      )
      ORDER BY due.oldest, due.session_id LIMIT $2::bigint`,

    // Its own statement, never waiting for a lock (SKIP LOCKED), so it cannot deadlock with a
    // delete that holds a session's row and waits for its turns.
    forget: `WITH forgotten AS (
        DELETE FROM ${turns} WHERE (session_id, turn_id) IN (
          SELECT session_id, turn_id FROM ${turns} WHERE folded_at < ${at('$2')}
          FOR UPDATE SKIP LOCKED
        )
        RETURNING 1
      ), lapsed AS (
        DELETE FROM ${leases} WHERE session_id IN (
          SELECT session_id FROM ${leases} WHERE expires_at <= ${at('$1')} FOR UPDATE SKIP LOCKED
        )
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM forgotten)::int AS turns, (SELECT count(*) FROM lapsed)::int AS leases`,
  };
}

function toMessages(value: unknown, turnId: string): Message[] {
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  if (!Array.isArray(parsed)) {
    throw new StorageError(
      'STORAGE_ERROR',
      `The pending turn ${JSON.stringify(turnId)} has no stored messages`,
    );
  }
  return parsed.map((message: { role?: unknown; content?: unknown }) => ({
    role: String(message?.role) as Message['role'],
    content: String(message?.content),
  }));
}

/** Decodes a row of {@link TurnLogStatements.readPending} into a fresh turn. */
export function toDriverTurn(row: Row): DriverTurn {
  const turnId = String(row.turn_id);
  return {
    turnId,
    userId: row.user_id === null || row.user_id === undefined ? null : String(row.user_id),
    messages: toMessages(row.messages, turnId),
    sequence: Number(row.sequence),
    recordedAt: Number(row.recorded_at_ms),
  };
}
