import {
  ContextError,
  LIMITS,
  LIST_LIMITS,
  type Message,
  MessageSchema,
  MIN_RENDER_CHARS,
  SessionIdSchema,
  UserIdSchema,
  ValidationError,
  type ValidationIssue,
} from '@ctx/core';
import { decodeListCursor, parseOrThrow } from '@ctx/core/adapter';

/** The request header that names the user a call is made for. */
export const USER_HEADER = 'x-ctx-user';

const TurnMessagesSchema = MessageSchema.array()
  .min(1, 'a turn needs at least one message')
  .max(LIMITS.messagesMaxCount, `at most ${LIMITS.messagesMaxCount} messages per turn`);

function invalid(what: string, issues: ValidationIssue[]): ValidationError {
  return new ValidationError(
    'INVALID_INPUT',
    `Invalid ${what}: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`,
    { issues },
  );
}

// Runs a core zod schema and re-roots its issue paths at `prefix` (e.g. `body.messages`).
function parseAt<T>(
  schema: Parameters<typeof parseOrThrow<T>>[0],
  value: unknown,
  prefix: string,
  what: string,
): T {
  try {
    return parseOrThrow(schema, value, what);
  } catch (error) {
    if (!ValidationError.isInstance(error)) throw error;
    const issues = (error as ValidationError).issues.map((issue) => ({
      path: issue.path === '(root)' ? prefix : `${prefix}.${issue.path}`,
      message: issue.message,
    }));
    throw invalid(what, issues);
  }
}

/**
 * Gathers the problems of every part of a request (path, query, headers, body) so one 400 lists
 * them all instead of one per round trip.
 */
export class IssueCollector {
  readonly issues: ValidationIssue[] = [];

  /** Runs `parse`; an `INVALID_INPUT` error is recorded (and `undefined` returned), others thrown. */
  take<T>(parse: () => T): T | undefined {
    try {
      return parse();
    } catch (error) {
      if (
        ValidationError.isInstance(error) &&
        error.code === 'INVALID_INPUT' &&
        'issues' in error
      ) {
        this.issues.push(...(error as ValidationError).issues);
        return undefined;
      }
      throw error;
    }
  }

  /** Throws one `INVALID_INPUT` error listing every recorded problem, if there is any. */
  assertValid(): void {
    if (this.issues.length > 0) throw invalid('request', this.issues);
  }
}

/** Parses the text of a JSON body; a syntax error is an `INVALID_INPUT` issue at `body`. */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw invalid('request', [
      { path: 'body', message: `not valid JSON (${(error as Error).message})` },
    ]);
  }
}

/** Validates the JSON body of `POST /v1/sessions/:id/turns` and returns its messages. */
export function parseTurnBody(body: unknown): Message[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('turn', [
      { path: 'body', message: 'expected a JSON object { "messages": [{ "role", "content" }] }' },
    ]);
  }
  const unknownKeys = Object.keys(body).filter((key) => key !== 'messages');
  if (unknownKeys.length > 0) {
    throw invalid(
      'turn',
      unknownKeys.map((key) => ({
        path: `body.${key}`,
        message: 'unknown field: the body holds only "messages"',
      })),
    );
  }
  const messages = (body as { messages?: unknown }).messages;
  if (messages === undefined) {
    throw invalid('turn', [
      { path: 'body.messages', message: 'required: an array of { role, content }' },
    ]);
  }
  return parseAt(TurnMessagesSchema, messages, 'body.messages', 'turn');
}

/** Validates a session id taken from the URL path. */
export function parseSessionId(value: string): string {
  return parseAt(SessionIdSchema, value, 'path.sessionId', 'session id');
}

/**
 * Reads the caller's user from the {@link USER_HEADER} header. Throws `INVALID_INPUT` when the
 * header is malformed, or absent while `required`.
 */
export function parseUserHeader(value: string | undefined, required: boolean): string | undefined {
  if (value === undefined) {
    if (!required) return undefined;
    throw invalid('request', [
      {
        path: `header.${USER_HEADER}`,
        message: 'required on writes: the id of the user this session belongs to',
      },
    ]);
  }
  return parseAt(UserIdSchema, value, `header.${USER_HEADER}`, 'request');
}

/** Throws `INVALID_INPUT` naming every query parameter not in `allowed` (catches typos). */
export function rejectUnknownParams(
  query: Record<string, string | undefined>,
  allowed: readonly string[],
): void {
  const unknown = Object.keys(query).filter((key) => !allowed.includes(key));
  if (unknown.length === 0) return;
  throw invalid(
    'query',
    unknown.map((key) => ({
      path: `query.${key}`,
      message:
        allowed.length > 0
          ? `unknown parameter: expected ${allowed.join(', ')}`
          : 'unknown parameter: this endpoint takes none',
    })),
  );
}

/** Validates an optional boolean query parameter (`true`/`false`/`1`/`0`). */
export function parseBooleanParam(
  name: string,
  value: string | undefined,
  fallback: boolean,
): boolean {
  if (value === undefined) return fallback;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw invalid('query', [{ path: `query.${name}`, message: 'expected true, false, 1 or 0' }]);
}

/** Validates an optional integer query parameter within `[min, max]`. */
export function parseIntegerParam(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const number = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(number) || number < min || number > max) {
    throw invalid('query', [
      { path: `query.${name}`, message: `expected an integer from ${min} to ${max}` },
    ]);
  }
  return number;
}

/** The parsed query of `GET /v1/sessions`. */
export interface SessionListQuery {
  userId: string | undefined;
  limit: number | undefined;
  cursor: string | undefined;
}

/**
 * Validates `?user=&limit=&cursor=`. A caller that names itself in the {@link USER_HEADER}
 * header lists its own sessions: `user` then defaults to it and may not name someone else.
 */
export function parseListQuery(
  query: Record<string, string | undefined>,
  caller: string | undefined,
): SessionListQuery {
  const check = new IssueCollector();
  check.take(() => rejectUnknownParams(query, ['user', 'limit', 'cursor']));
  const userId =
    query.user === undefined
      ? caller
      : check.take(() => parseAt(UserIdSchema, query.user, 'query.user', 'query'));
  const limit = check.take(() => parseIntegerParam('limit', query.limit, 1, LIST_LIMITS.maxLimit));
  const cursor = query.cursor === '' ? undefined : query.cursor;
  if (cursor !== undefined) {
    check.take(() => {
      try {
        decodeListCursor(cursor);
      } catch {
        throw invalid('query', [
          {
            path: 'query.cursor',
            message: 'not a cursor from this API: pass back a nextCursor unchanged',
          },
        ]);
      }
    });
  }
  check.assertValid();
  if (caller !== undefined && userId !== caller) {
    throw new ContextError(
      'OWNERSHIP_MISMATCH',
      `The ${USER_HEADER} header names user "${caller}" but ?user= asks for the sessions of "${userId}": a user lists only their own sessions`,
    );
  }
  return { userId, limit, cursor };
}

/** The parsed query of `GET /v1/sessions/:id/context`. */
export interface ContextQuery {
  format: 'json' | 'prompt';
  maxChars: number | undefined;
}

/** Validates `?format=json|prompt&maxChars=`. */
export function parseContextQuery(query: Record<string, string | undefined>): ContextQuery {
  const check = new IssueCollector();
  check.take(() => rejectUnknownParams(query, ['format', 'maxChars']));
  const format = query.format ?? 'json';
  if (format !== 'json' && format !== 'prompt') {
    check.issues.push({ path: 'query.format', message: 'expected json or prompt' });
  }
  const maxChars = check.take(() =>
    parseIntegerParam('maxChars', query.maxChars, MIN_RENDER_CHARS, LIMITS.summaryMaxLength * 2),
  );
  if (maxChars !== undefined && format !== 'prompt') {
    check.issues.push({ path: 'query.maxChars', message: 'only applies with format=prompt' });
  }
  check.assertValid();
  return { format: format as ContextQuery['format'], maxChars };
}
