import { type SessionContext, StorageError, type StoredFields } from '@ctx/core';

/** The columns of the session table, in the order statements select them. */
export const SNAPSHOT_COLUMNS =
  'session_id, user_id, summary, goal, plan, progress, created_at, updated_at, version, fields';

/** One row as better-sqlite3 returns it (integers as numbers). */
export interface SnapshotRow {
  session_id: string;
  user_id: string | null;
  summary: string;
  goal: string | null;
  plan: string | null;
  progress: string | null;
  created_at: number;
  updated_at: number;
  version: number;
  /** Custom fields: one JSON object as text, or null (schema version 4). */
  fields: string | null;
}

/** Named parameters of the insert and update statements. */
export interface SnapshotParameters {
  sessionId: string;
  userId: string | null;
  summary: string;
  goal: string | null;
  plan: string | null;
  progress: string | null;
  createdAt: number;
  updatedAt: number;
  version: number;
  fields: string | null;
  expiresAt: number | null;
}

/** A snapshot as statement parameters: JSON text for steps, epoch milliseconds for dates. */
export function toParameters(
  snapshot: SessionContext,
  expiresAt: number | null,
): SnapshotParameters {
  return {
    sessionId: snapshot.sessionId,
    userId: snapshot.userId,
    summary: snapshot.summary,
    goal: snapshot.goal,
    plan: snapshot.plan === null ? null : JSON.stringify(snapshot.plan),
    progress: snapshot.progress === null ? null : JSON.stringify(snapshot.progress),
    createdAt: snapshot.createdAt.getTime(),
    updatedAt: snapshot.updatedAt.getTime(),
    version: snapshot.version,
    fields: snapshot.fields ? JSON.stringify(snapshot.fields) : null,
    expiresAt,
  };
}

function corrupt(row: SnapshotRow, column: string): StorageError {
  return new StorageError(
    'STORAGE_ERROR',
    `Stored session "${String(row.session_id)}" has an invalid ${column} column: the row was altered outside ctx. Fix or delete the row`,
  );
}

function decodeSteps(row: SnapshotRow, column: 'plan' | 'progress'): string[] | null {
  const text = row[column];
  if (text === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw corrupt(row, column);
  }
  if (!Array.isArray(value) || !value.every((step) => typeof step === 'string')) {
    throw corrupt(row, column);
  }
  return value;
}

function decodeFields(row: SnapshotRow): StoredFields | null {
  if (row.fields === null || row.fields === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(row.fields);
  } catch {
    throw corrupt(row, 'fields');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw corrupt(row, 'fields');
  }
  return value as StoredFields;
}

function decodeTime(row: SnapshotRow, column: 'created_at' | 'updated_at'): Date {
  const time = row[column];
  if (!Number.isSafeInteger(time)) throw corrupt(row, column);
  return new Date(time);
}

/** A stored row as a fresh {@link SessionContext}; throws `STORAGE_ERROR` on a tampered row. */
export function fromRow(row: SnapshotRow): SessionContext {
  if (!Number.isSafeInteger(row.version) || row.version < 1) throw corrupt(row, 'version');
  return {
    sessionId: row.session_id,
    userId: row.user_id,
    summary: row.summary,
    goal: row.goal,
    plan: decodeSteps(row, 'plan'),
    progress: decodeSteps(row, 'progress'),
    createdAt: decodeTime(row, 'created_at'),
    updatedAt: decodeTime(row, 'updated_at'),
    version: row.version,
    fields: decodeFields(row),
  };
}
