import { MessageSchema, StorageError, type TurnInput } from '@ctx/core';
import type { ContextDriver } from '@ctx/core/adapter';
import type { Database, Statement } from 'better-sqlite3';
import { quote, type SqliteObjectNames } from './sqlite-schema.js';

/** The turn-log statements of a session table, by name. */
export function turnLogSqlFor(names: SqliteObjectNames) {
  const turns = quote(names.turns);
  const leases = quote(names.leases);
  const PENDING = 'folded_at IS NULL';
  return {
    knownTurn: `SELECT sequence FROM ${turns} WHERE session_id = ? AND turn_id = ?`,
    pendingCount: `SELECT count(*) AS pending FROM ${turns} WHERE session_id = ? AND ${PENDING}`,
    insertTurn: `INSERT INTO ${turns} (session_id, turn_id, user_id, messages, recorded_at) VALUES (?, ?, ?, ?, ?) RETURNING sequence`,
    pendingTurns: `SELECT turn_id, user_id, messages, sequence, recorded_at FROM ${turns} WHERE session_id = ? AND ${PENDING} ORDER BY sequence LIMIT ?`,
    // One parameter for any number of ids: a JSON array, opened by json_each.
    foldTurns: `UPDATE ${turns} SET folded_at = ?, messages = NULL, user_id = NULL WHERE session_id = ? AND ${PENDING} AND turn_id IN (SELECT value FROM json_each(?))`,
    forgetTurns: `DELETE FROM ${turns} WHERE session_id = ?`,
    forgetLease: `DELETE FROM ${leases} WHERE session_id = ?`,
    purgeFolded: `DELETE FROM ${turns} WHERE folded_at < ?`,
    // An expired lease is the same as none, so dropping it changes no answer.
    purgeLeases: `DELETE FROM ${leases} WHERE expires_at <= ?`,
    takeLease: `INSERT INTO ${leases} (session_id, holder, expires_at) VALUES (@sessionId, @holder, @expiresAt)
ON CONFLICT (session_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE holder = excluded.holder OR expires_at <= @now`,
    releaseLease: `DELETE FROM ${leases} WHERE session_id = ? AND holder = ?`,
    pendingSessions: `SELECT turn.session_id FROM ${turns} AS turn
WHERE turn.${PENDING} AND turn.recorded_at <= @recordedBefore
AND turn.sequence = (SELECT min(oldest.sequence) FROM ${turns} AS oldest WHERE oldest.session_id = turn.session_id AND oldest.${PENDING})
AND NOT EXISTS (SELECT 1 FROM ${leases} AS lease WHERE lease.session_id = turn.session_id AND lease.expires_at > @now)
ORDER BY turn.recorded_at, turn.session_id LIMIT @limit`,
  };
}

/** The prepared statements of {@link turnLogSqlFor}. */
export type TurnLogStatements = Record<keyof ReturnType<typeof turnLogSqlFor>, Statement>;

/** The driver's turn-log members (their request and result types are not exported by core). */
type TurnLogMembers = Required<
  Pick<ContextDriver, 'recordTurn' | 'readPending' | 'lease' | 'releaseLease' | 'pendingSessions'>
>;

/** A turn as `readPending` returns it. */
type DriverTurn = Awaited<ReturnType<TurnLogMembers['readPending']>>[number];

/** A pending turn as better-sqlite3 returns it. */
interface TurnRow {
  turn_id: string;
  user_id: string | null;
  messages: string | null;
  sequence: number;
  recorded_at: number;
}

const MessagesSchema = MessageSchema.array();

function corrupt(sessionId: string, row: TurnRow, column: string): StorageError {
  return new StorageError(
    'STORAGE_ERROR',
    `Stored turn "${String(row.turn_id)}" of session "${sessionId}" has an invalid ${column} column: the row was altered outside ctx. Fix or delete the row`,
  );
}

function fromTurnRow(sessionId: string, row: TurnRow): DriverTurn {
  let messages: unknown;
  try {
    messages = row.messages === null ? null : JSON.parse(row.messages);
  } catch {
    throw corrupt(sessionId, row, 'messages');
  }
  const parsed = MessagesSchema.safeParse(messages);
  if (!parsed.success) throw corrupt(sessionId, row, 'messages');
  if (!Number.isSafeInteger(row.recorded_at)) throw corrupt(sessionId, row, 'recorded_at');
  return {
    turnId: row.turn_id,
    userId: row.user_id,
    messages: parsed.data,
    sequence: row.sequence,
    recordedAt: row.recorded_at,
  };
}

/** The turn-log members of the SQLite driver, plus the parts its session writes run. */
export interface SqliteTurnLog extends TurnLogMembers {
  /** Marks the named pending turns folded. Call inside the write's transaction, once it wrote. */
  fold(sessionId: string, turnIds: string[], now: number): void;
  /** Drops the session's turns (pending and folded) and lease. Call inside the remove's transaction. */
  forget(sessionId: string): void;
  /** Forgets folded turns older than `tombstonesBefore` and expired leases. Call inside purge's. */
  purge(now: number, tombstonesBefore: number): void;
}

/**
 * The turn log on two tables of the session table's database: `<table>_turns` (pending turns with
 * their messages; folded ones keep only id, sequence and fold time) and `<table>_leases`. Every
 * write is one `BEGIN IMMEDIATE` transaction, so the duplicate check, the pending bound and the
 * insert are one step across connections and processes.
 */
export function createSqliteTurnLog(
  database: Database,
  statements: TurnLogStatements,
): SqliteTurnLog {
  const record = database.transaction(
    (sessionId: string, turn: TurnInput, now: number, maxPending: number) => {
      const known = statements.knownTurn.get(sessionId, turn.turnId) as
        | { sequence: number }
        | undefined;
      if (known) return { status: 'duplicate', sequence: known.sequence } as const;
      const { pending } = statements.pendingCount.get(sessionId) as { pending: number };
      if (pending >= maxPending) return { status: 'full', pending } as const;
      const { sequence } = statements.insertTurn.get(
        sessionId,
        turn.turnId,
        turn.userId,
        JSON.stringify(turn.messages),
        now,
      ) as { sequence: number };
      return { status: 'recorded', sequence } as const;
    },
  );

  const takeLease = database.transaction(
    (parameters: { sessionId: string; holder: string; expiresAt: number; now: number }) =>
      statements.takeLease.run(parameters).changes === 1,
  );

  const releaseLease = database.transaction((sessionId: string, holder: string) => {
    statements.releaseLease.run(sessionId, holder);
  });

  return {
    recordTurn({ sessionId, turn, now, maxPending }) {
      return record.immediate(sessionId, turn, now, maxPending);
    },

    readPending({ sessionId, limit }) {
      const rows = statements.pendingTurns.all(sessionId, limit) as TurnRow[];
      return rows.map((row) => fromTurnRow(sessionId, row));
    },

    lease({ sessionId, holder, ttlMs, now }) {
      return takeLease.immediate({ sessionId, holder, expiresAt: now + ttlMs, now });
    },

    releaseLease({ sessionId, holder }) {
      releaseLease.immediate(sessionId, holder);
    },

    pendingSessions({ recordedBefore, limit, now }) {
      const rows = statements.pendingSessions.all({ recordedBefore, limit, now }) as {
        session_id: string;
      }[];
      return rows.map((row) => row.session_id);
    },

    fold(sessionId, turnIds, now) {
      statements.foldTurns.run(now, sessionId, JSON.stringify(turnIds));
    },

    forget(sessionId) {
      statements.forgetTurns.run(sessionId);
      statements.forgetLease.run(sessionId);
    },

    purge(now, tombstonesBefore) {
      statements.purgeFolded.run(tombstonesBefore);
      statements.purgeLeases.run(now);
    },
  };
}
