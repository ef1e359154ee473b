import { type SessionContext, StorageError, type StoredFields } from '@ctx/core';

/**
 * The JSON document stored at `{prefix}:s:<sessionId>` (and in the history list): the snapshot's
 * fields under their TypeScript names, timestamps as epoch milliseconds, in this order. `version`
 * is always the last key: the client encodes everything before it and the save script appends the
 * version it stores (see {@link encodeDocumentHead}).
 */
export interface RedisSessionDocument {
  /** The session id (also the end of the key). */
  sessionId: string;
  /** The owner, or null for an anonymous session. */
  userId: string | null;
  /** The summary text. */
  summary: string;
  /** The goal (planning mode), or null. */
  goal: string | null;
  /** The plan steps (planning mode), or null. */
  plan: string[] | null;
  /** The completed steps (planning mode), or null. */
  progress: string[] | null;
  /**
   * The custom fields (one JSON object), or null. Documents written before custom fields existed
   * have no such key and read as null: no migration.
   */
  fields?: StoredFields | null;
  /** Creation time, epoch milliseconds. */
  createdAt: number;
  /** Time of the last update, epoch milliseconds (the list order). */
  updatedAt: number;
  /**
   * The compare-and-set version: 1 on the first write, and never restarting while the id keeps a
   * tombstone (a create over a deleted or expired session continues after its last version).
   */
  version: number;
}

/**
 * Serialises a validated snapshot to the stored JSON document without its version: the text ends
 * in `,"version":`, and the save script completes it with the version it decides on and `}` (a
 * create over a tombstone stores a higher version than the snapshot's).
 */
export function encodeDocumentHead(snapshot: SessionContext): string {
  const fields: Omit<RedisSessionDocument, 'version'> = {
    sessionId: snapshot.sessionId,
    userId: snapshot.userId,
    summary: snapshot.summary,
    goal: snapshot.goal,
    plan: snapshot.plan,
    progress: snapshot.progress,
    fields: snapshot.fields ?? null,
    createdAt: snapshot.createdAt.getTime(),
    updatedAt: snapshot.updatedAt.getTime(),
  };
  return `${JSON.stringify(fields).slice(0, -1)},"version":`;
}

const isString = (value: unknown): value is string => typeof value === 'string';
const isNullableString = (value: unknown) => value === null || isString(value);
const isSteps = (value: unknown) =>
  value === null || (Array.isArray(value) && value.every(isString));
const isFields = (value: unknown) =>
  value === undefined || value === null || (typeof value === 'object' && !Array.isArray(value));
const isMillis = (value: unknown): value is number =>
  Number.isSafeInteger(value) && Math.abs(value as number) <= 8_640_000_000_000_000;

function isDocument(value: unknown): value is RedisSessionDocument {
  if (typeof value !== 'object' || value === null) return false;
  const document = value as Record<string, unknown>;
  return (
    isString(document.sessionId) &&
    isNullableString(document.userId) &&
    isString(document.summary) &&
    isNullableString(document.goal) &&
    isSteps(document.plan) &&
    isSteps(document.progress) &&
    isFields(document.fields) &&
    isMillis(document.createdAt) &&
    isMillis(document.updatedAt) &&
    Number.isSafeInteger(document.version) &&
    (document.version as number) >= 1
  );
}

/**
 * Parses a stored document back into a snapshot. Anything that is not a ctx document (another
 * application writing under the same prefix, a hand-edited key) is `SCHEMA_MISMATCH`.
 */
export function decodeDocument(json: string, key: string): SessionContext {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw mismatch(key, error);
  }
  if (!isDocument(value)) throw mismatch(key);
  return {
    sessionId: value.sessionId,
    userId: value.userId,
    summary: value.summary,
    goal: value.goal,
    plan: value.plan,
    progress: value.progress,
    createdAt: new Date(value.createdAt),
    updatedAt: new Date(value.updatedAt),
    version: value.version,
    fields: value.fields ?? null,
  };
}

/** The error for a key that holds something other than a ctx session document. */
export function mismatch(key: string, cause?: unknown): StorageError {
  return new StorageError(
    'SCHEMA_MISMATCH',
    `Redis key "${key}" does not hold a ctx session document: another application (or a hand edit) wrote under this key prefix. Give ctx a keyPrefix of its own, or delete the key`,
    { cause },
  );
}
