import type { Message } from './schema.js';

/** A turn to record in a session's pending log. */
export interface TurnInput {
  /**
   * The turn's id (1–256 characters, like a session id). Recording the same id twice is a no-op,
   * also after the turn was folded: retrying a turn whose first attempt may have been stored is
   * safe.
   */
  turnId: string;
  /** Who sent the turn; a fold applies only turns of the session's owner (or of anyone when unowned). */
  userId: string | null;
  /** The turn's messages, oldest first. */
  messages: Message[];
}

/** A turn as the log holds it. */
export interface RecordedTurn extends TurnInput {
  /** Position in the session's log: grows with every turn recorded for the session. */
  sequence: number;
  /** When it was recorded (the repository's clock). */
  recordedAt: Date;
}

/** What {@link TurnLog.recordTurn} did. */
export interface RecordTurnResult {
  turnId: string;
  /** The turn's position in the session's log (the first recording's, for a duplicate). */
  sequence: number;
  /** `true` when the id was already recorded (pending or folded): nothing was written. */
  duplicate: boolean;
}

/** Options of {@link TurnLog.acquireLease}. */
export interface LeaseOptions {
  /** Who takes the lease: a unique id per folder (process and fold). */
  holder: string;
  /** How long the lease lasts unless renewed, in milliseconds. */
  ttlMs: number;
}

/** Options of {@link TurnLog.sessionsWithPendingTurns}. */
export interface PendingSessionsQuery {
  /** Only sessions whose oldest pending turn was recorded at or before this time. @default now */
  recordedBefore?: Date;
  /** At most this many session ids, oldest pending turn first. @default 100 */
  limit?: number;
}

/**
 * The turn log of a repository with the `turnLog` capability: every turn is first recorded in the
 * same backend as the snapshot, then folded into the snapshot by a compare-and-set `save` that
 * names the turns it folded (`foldedTurnIds`), so a recorded turn is never lost and never folded
 * twice. A short lease in the same backend lets one folder work on a session at a time;
 * correctness never depends on it, only on compare-and-set.
 */
export interface TurnLog {
  /**
   * Appends a turn to the session's pending log, atomically and idempotently by `turnId`. Fails
   * with `BACKPRESSURE` when the session already has the repository's maximum of pending turns
   * (nothing is written: fold, then record again).
   */
  recordTurn(sessionId: string, turn: TurnInput): Promise<RecordTurnResult>;
  /** The session's pending (recorded, not yet folded) turns, oldest first. */
  pendingTurns(sessionId: string, options?: { limit?: number }): Promise<RecordedTurn[]>;
  /**
   * Takes or renews the session's lease for `holder`: `true` when it holds the lease now (it was
   * free, expired, or already its own), `false` when another holder has a live lease.
   */
  acquireLease(sessionId: string, options: LeaseOptions): Promise<boolean>;
  /** Gives the lease back when `holder` holds it; otherwise does nothing. */
  releaseLease(sessionId: string, holder: string): Promise<void>;
  /** Sessions with pending turns and no live lease, oldest pending turn first (for drains). */
  sessionsWithPendingTurns(query?: PendingSessionsQuery): Promise<string[]>;
}
