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
});

/**
 * The stored snapshot of one session.
 *
 * `version` is 1 on the first write and grows by 1 on every write: it is the optimistic
 * concurrency token given back to `save` as `expectedVersion`.
 */
export interface SessionContext {
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
});
export interface ContextDraft {
  summary: string;
  goal?: string | null;
  plan?: string[] | null;
  progress?: string[] | null;
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
