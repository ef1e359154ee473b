import { z } from 'zod';
import { ValidationError, type ValidationIssue } from './errors.js';

/**
 * Size limits every repository enforces (through {@link assertValidSnapshot}) so that a snapshot
 * that fits one backend fits all of them. Lengths count UTF-16 code units (`string.length`).
 */
export const LIMITS = {
  /** Session and user ids: 1–256 characters. */
  idMaxLength: 256,
  /** The summary: up to 200 000 characters (a 100 KB summary round-trips everywhere). */
  summaryMaxLength: 200_000,
  /** The goal: up to 4 000 characters. */
  goalMaxLength: 4_000,
  /** Plan and progress: up to 100 steps. */
  planMaxSteps: 100,
  /** One plan or progress step: up to 2 000 characters. */
  stepMaxLength: 2_000,
  /** One message given to `update`: up to 1 000 000 characters. */
  messageMaxLength: 1_000_000,
  /** Messages given to one `update`: up to 1 000. */
  messagesMaxCount: 1_000,
  /** Versions a repository with the history capability may keep per session: up to 10 000. */
  historyMaxVersions: 10_000,
  /** Earliest storable `createdAt`/`updatedAt`: 0001-01-01T00:00:00.000Z (epoch ms). */
  minTimestamp: -62_135_596_800_000,
  /** Latest storable `createdAt`/`updatedAt`: 9999-12-31T23:59:59.999Z (epoch ms). */
  maxTimestamp: 253_402_300_799_999,
  /** Custom fields: up to 100 000 characters once serialised as JSON. */
  fieldsMaxLength: 100_000,
  /** Custom fields: JSON nested at most 16 levels deep (the fields object is level 1). */
  fieldsMaxDepth: 16,
} as const;

// Text must survive every backend unchanged: PostgreSQL rejects U+0000, and a lone UTF-16
// surrogate cannot be encoded as UTF-8 (SQLite and PostgreSQL would replace it silently).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `text` has no lone UTF-16 surrogate (it can be encoded as UTF-8 unchanged). */
export function isWellFormedText(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

// zod's string .max() counts code points; our limits count UTF-16 code units (string.length), the
// unit every backend and JavaScript caller measures in.
const maxLength = (label: string, limit: number) =>
  storableText(label).refine(
    (value) => value.length <= limit,
    `${label} must be at most ${limit} characters (UTF-16 code units)`,
  );

const storableText = (label: string) =>
  z
    .string()
    .refine((value) => !value.includes('\u0000'), `${label} must not contain U+0000 (NUL)`)
    .refine(isWellFormedText, `${label} must be well-formed Unicode (no lone surrogates)`);

const identifier = (label: string) =>
  maxLength(label, LIMITS.idMaxLength)
    .refine((value) => value.length > 0, `${label} must not be empty`)
    .refine(
      (value) => !/[\u0000-\u001f\u007f]/.test(value),
      `${label} must not contain control characters`,
    );

/** A session id: 1–256 characters, no control characters, well-formed Unicode. */
export const SessionIdSchema = identifier('sessionId');
/** A user id: same rules as a session id. */
export const UserIdSchema = identifier('userId');
/** A turn id of the turn log: same rules as a session id. */
export const TurnIdSchema = identifier('turnId');

const step = maxLength('a step', LIMITS.stepMaxLength);
const steps = z.array(step).max(LIMITS.planMaxSteps, `at most ${LIMITS.planMaxSteps} steps`);

// Every backend can store these instants: PostgreSQL's timestamptz starts in 4714 BC, and a
// four-digit year keeps ISO strings comparable.
const timestamp = z.date().refine((date) => {
  const time = date.getTime();
  return time >= LIMITS.minTimestamp && time <= LIMITS.maxTimestamp;
}, 'must be a valid date between the years 0001 and 9999');

/** Who said a message. `system` messages are not sent to the extractor (they hold our own block). */
export const RoleSchema = z.enum(['system', 'user', 'assistant', 'tool']);
export type Role = z.infer<typeof RoleSchema>;

/** One chat message. */
export const MessageSchema = z.object({
  role: RoleSchema,
  content: maxLength('content', LIMITS.messageMaxLength),
});
export interface Message {
  role: Role;
  content: string;
}

/** A JSON value, as custom fields are stored. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * The custom fields of a snapshot as a repository stores them: one JSON object (every backend keeps
 * it in one JSON column or hash field, whatever the fields are). Keys are 1–256 characters and not
 * `__proto__`; strings are storable text (no U+0000, no lone surrogate); numbers are finite (`-0` is
 * stored as `0`); at most {@link LIMITS.fieldsMaxDepth} levels and {@link LIMITS.fieldsMaxLength}
 * characters of JSON.
 */
export type StoredFields = { [key: string]: JsonValue };

function jsonProblem(value: unknown, path: string, depth: number): string | null {
  if (value === null || typeof value === 'boolean') return null;
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return `${path}: must not contain U+0000 (NUL)`;
    return isWellFormedText(value) ? null : `${path}: must be well-formed Unicode`;
  }
  if (typeof value === 'number') {
    return Number.isFinite(value) ? null : `${path}: must be a finite number`;
  }
  if (typeof value !== 'object') return `${path}: ${typeof value} is not a JSON value`;
  if (depth > LIMITS.fieldsMaxDepth) {
    return `${path}: nested deeper than ${LIMITS.fieldsMaxDepth} levels`;
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const problem = jsonProblem(item, `${path}.${index}`, depth + 1);
      if (problem) return problem;
    }
    return null;
  }
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) {
    return `${path}: must be a plain object, an array or a primitive JSON value`;
  }
  for (const [key, item] of Object.entries(value)) {
    if (key.length === 0 || key.length > LIMITS.idMaxLength || key === '__proto__') {
      return `${path}: key ${JSON.stringify(key)} must be 1–${LIMITS.idMaxLength} characters and not __proto__`;
    }
    if (key.includes('\u0000') || !isWellFormedText(key)) {
      return `${path}: key ${JSON.stringify(key)} must be storable text`;
    }
    const problem = jsonProblem(item, `${path}.${key}`, depth + 1);
    if (problem) return problem;
  }
  return null;
}

/**
 * Why `value` cannot be stored as custom fields (see {@link StoredFields}), or null when it can.
 * `undefined` values are refused: JSON would drop them, and nothing stored may change.
 */
export function storedFieldsProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'fields: must be a JSON object or null';
  }
  const problem = jsonProblem(value, 'fields', 1);
  if (problem) return problem;
  const length = JSON.stringify(value).length;
  return length > LIMITS.fieldsMaxLength
    ? `fields: ${length} characters of JSON, more than ${LIMITS.fieldsMaxLength}`
    : null;
}

/** Validates {@link StoredFields}. */
export const StoredFieldsSchema = z.custom<StoredFields>().superRefine((value, context) => {
  const problem = storedFieldsProblem(value);
  if (problem) context.addIssue({ code: 'custom', message: problem });
});

/**
 * A JSON copy of stored fields with object keys in code-unit order at every level: what every
 * repository stores and returns, so that a snapshot reads back the same from every backend (some
 * databases reorder JSON keys).
 */
export function canonicalFields(fields: StoredFields | null | undefined): StoredFields | null {
  if (fields === null || fields === undefined) return null;
  return canonicalJson(fields) as StoredFields;
}

/**
 * `fields` itself when it already is in canonical form (what a backend returns for what ctx
 * stored, usually), else a canonical copy: for read paths that own the object, where a copy on
 * every `get` would cost more than the check.
 */
export function ensureCanonicalFields(
  fields: StoredFields | null | undefined,
): StoredFields | null {
  if (fields === null || fields === undefined) return null;
  return isCanonicalJson(fields) ? fields : (canonicalJson(fields) as StoredFields);
}

function isCanonicalJson(value: JsonValue): boolean {
  if (Array.isArray(value)) return value.every(isCanonicalJson);
  if (typeof value === 'number') return !Object.is(value, -0);
  if (typeof value !== 'object' || value === null) return true;
  let previous: string | undefined;
  for (const key of Object.keys(value)) {
    if (previous !== undefined && !(previous < key)) return false;
    if (!isCanonicalJson(value[key] as JsonValue)) return false;
    previous = key;
  }
  return true;
}

function canonicalJson(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(canonicalJson);
  if (typeof value === 'number') return value === 0 ? 0 : value;
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map((key) => [key, canonicalJson(value[key] as JsonValue)]),
  );
}

/** The stored snapshot of one session. Replaced on every update, never accumulated. */
export const SessionContextSchema = z.object({
  sessionId: SessionIdSchema,
  userId: UserIdSchema.nullable(),
  summary: maxLength('summary', LIMITS.summaryMaxLength),
  goal: maxLength('goal', LIMITS.goalMaxLength).nullable(),
  plan: steps.nullable(),
  progress: steps.nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  fields: StoredFieldsSchema.nullable().optional(),
});

/**
 * The built-in part of a snapshot: everything but the custom fields.
 *
 * `version` is 1 on the first write and grows by 1 on every write: it is the optimistic
 * concurrency token given back to `save` as `expectedVersion`.
 */
export interface SessionContextBase {
  /** Unique session id (1–256 characters). */
  sessionId: string;
  /** The owner of the session, or null for an anonymous session. */
  userId: string | null;
  /** What has been discussed: work in progress, key decisions, current state, open questions. */
  summary: string;
  /** What the user is trying to accomplish (planning mode), or null. */
  goal: string | null;
  /** Ordered steps to reach the goal (planning mode), or null. */
  plan: string[] | null;
  /** Completed steps, each one a step of `plan` (planning mode), or null. */
  progress: string[] | null;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

/**
 * The stored snapshot of one session.
 *
 * `fields` holds the application's custom fields (see the `fields` option of
 * `SessionContextStore`), `null` when none is set. Without a type argument it is the stored JSON
 * object and may be omitted when writing (the same as `null`); repositories always return it. With
 * the fields' type (`SessionContext<{ platform: string | null }>`, what a store with `fields`
 * returns) it is that typed object, every declared field present (`null` when unset).
 */
export type SessionContext<F extends object | undefined = undefined> = SessionContextBase &
  (F extends object ? { fields: F | null } : { fields?: StoredFields | null });

/** A turn to record in the turn log: an id, its sender, and 1–1000 messages. */
export const TurnInputSchema = z.object({
  turnId: TurnIdSchema,
  userId: UserIdSchema.nullable(),
  messages: z.array(MessageSchema).min(1).max(LIMITS.messagesMaxCount),
});

/** The content an extractor produces: the next snapshot minus identity, timestamps and version. */
export const ContextDraftSchema = z.object({
  summary: SessionContextSchema.shape.summary,
  goal: SessionContextSchema.shape.goal.optional(),
  plan: SessionContextSchema.shape.plan.optional(),
  progress: SessionContextSchema.shape.progress.optional(),
  fields: z.record(z.string(), z.unknown()).nullable().optional(),
});

/**
 * The content an extractor produces. `fields` (custom fields) gives a value for each field to set;
 * a field that is absent or `null` keeps its stored value, unless it is declared clearable (then
 * `null` clears it). With the fields' type (`ContextDraft<{ platform: string | null }>`) the keys
 * and values are typed.
 */
export interface ContextDraft<F extends object | undefined = undefined> {
  summary: string;
  goal?: string | null | undefined;
  plan?: string[] | null | undefined;
  progress?: string[] | null | undefined;
  fields?:
    | (F extends object ? { [K in keyof F]?: F[K] | null } : { [key: string]: unknown })
    | null
    | undefined;
}

/** Turns zod issues into our `path: message` list. */
export function toValidationIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(root)',
    message: issue.message,
  }));
}

/**
 * Parses `value` with `schema` or throws a {@link ValidationError} (`INVALID_INPUT` unless told
 * otherwise) whose message lists every problem.
 */
export function parseOrThrow<T>(
  schema: z.ZodType<T>,
  value: unknown,
  what: string,
  code: 'INVALID_INPUT' | 'INVALID_CONFIG' = 'INVALID_INPUT',
): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = toValidationIssues(result.error);
  throw new ValidationError(
    code,
    `Invalid ${what}: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`,
    { cause: result.error, issues },
  );
}

/** Throws `INVALID_INPUT` unless `sessionId` is a valid session id. */
export function assertValidSessionId(sessionId: unknown): asserts sessionId is string {
  parseOrThrow(SessionIdSchema, sessionId, 'session id');
}

/** Throws `INVALID_INPUT` unless `snapshot` is a complete, valid {@link SessionContext}. */
export function assertValidSnapshot(snapshot: unknown): asserts snapshot is SessionContext {
  parseOrThrow(SessionContextSchema, snapshot, 'session context');
}
