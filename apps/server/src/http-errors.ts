import {
  BackpressureError,
  ContextError,
  ExtractionError,
  type ValidationIssue,
  VersionConflictError,
} from '@ctx/core';
import { HTTPException } from 'hono/http-exception';

/**
 * Codes of error responses: every {@link ContextError} code, plus the ones only HTTP has.
 *
 * - `UNAUTHENTICATED`: no bearer token, or one the server does not know (401).
 * - `FORBIDDEN`: the token may not do this: act as another user, or write as an operator (403).
 * - `RATE_LIMITED`: the caller sent more requests than its rate limit allows (429).
 * - `NOT_FOUND`: no such session, or no such route.
 * - `UNSUPPORTED_MEDIA_TYPE`: a body that is not `application/json`.
 * - `PAYLOAD_TOO_LARGE`: a body over the server's limit.
 * - `SHUTTING_DOWN`: the server is draining before exit; retry on another instance.
 * - `INTERNAL_ERROR`: a bug; the server log has the details.
 */
export type ServerErrorCode =
  | ContextError['code']
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'NOT_FOUND'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'SHUTTING_DOWN'
  | 'INTERNAL_ERROR';

/** The JSON body of every error response. */
export interface ErrorBody {
  error: {
    /** Stable machine-readable code: switch on it, never on `message`. */
    code: ServerErrorCode;
    /** What went wrong and what to do about it. */
    message: string;
    /** `INVALID_INPUT`: every problem found, each naming its field (`body.messages.0.role`, `query.limit`, `header.x-ctx-user`). */
    issues?: ValidationIssue[];
    /** Whether sending the same request again later may succeed. */
    retryable: boolean;
    /** `EXTRACTION_FAILED`: why the model call failed (`rate_limit`, `timeout`, `invalid_json`…). */
    reason?: string;
    /** `VERSION_CONFLICT`: the version stored now. */
    currentVersion?: number | null;
    /** The request's id (also in the `x-request-id` response header and the server's log lines). */
    requestId?: string;
  };
}

/** An error response: status, JSON body and extra headers. */
export interface HttpError {
  status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 502 | 503 | 504;
  body: ErrorBody;
  headers: Record<string, string>;
}

/** An error raised by the HTTP layer itself (unknown route, bad media type, draining). */
export class HttpProblem extends Error {
  readonly status: HttpError['status'];
  readonly code: ServerErrorCode;
  readonly retryable: boolean;
  /** Extra response headers (`WWW-Authenticate`, `Retry-After`). */
  readonly headers: Record<string, string>;

  constructor(
    status: HttpError['status'],
    code: ServerErrorCode,
    message: string,
    retryable = false,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpProblem';
    this.status = status;
    this.code = code;
    this.retryable = retryable;
    this.headers = headers;
  }
}

/**
 * The longest `Retry-After` this server sends, in seconds. A provider's hint is passed on, but a
 * huge or malformed one (10^23 s) is clamped: the header is always an integer from 1 to this.
 */
export const MAX_RETRY_AFTER_SECONDS = 3600;

/** A `Retry-After` value from milliseconds: an integer number of seconds, 1 to {@link MAX_RETRY_AFTER_SECONDS}. */
export function retryAfterSeconds(milliseconds: number | undefined): number {
  const seconds =
    milliseconds === undefined || !Number.isFinite(milliseconds)
      ? milliseconds === Number.POSITIVE_INFINITY
        ? MAX_RETRY_AFTER_SECONDS
        : 1
      : Math.ceil(milliseconds / 1000);
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, seconds));
}

function statusOf(error: ContextError): HttpError['status'] {
  switch (error.code) {
    case 'INVALID_INPUT':
      return 400;
    case 'OWNERSHIP_MISMATCH':
      return 403;
    case 'VERSION_CONFLICT':
      return 409;
    case 'EXTRACTION_FAILED':
      if (!ExtractionError.isInstance(error)) return 502;
      if (error.reason === 'rate_limit') return 503;
      if (error.reason === 'timeout') return 504;
      return 502;
    case 'STORAGE_UNAVAILABLE':
    case 'CLOSED':
    case 'BACKPRESSURE':
      return 503;
    default:
      return 500;
  }
}

function messageOf(error: ContextError): string {
  if (error.code === 'CLOSED') {
    return 'The server is shutting down and its storage is closed: retry on another instance';
  }
  if (error.code === 'VERSION_CONFLICT') {
    return `${error.message}: other writers kept updating the session while this turn was processed and the retries ran out; the turn was not applied, send it again`;
  }
  return error.message;
}

/**
 * Maps any thrown value to an error response. ctx errors keep their code; anything else is an
 * `INTERNAL_ERROR` whose details stay in the server log (`report` is called with it).
 */
export function toHttpError(error: unknown, report: (error: unknown) => void): HttpError {
  if (error instanceof HttpProblem) {
    return {
      status: error.status,
      body: { error: { code: error.code, message: error.message, retryable: error.retryable } },
      headers: error.code === 'SHUTTING_DOWN' ? { connection: 'close' } : error.headers,
    };
  }
  if (error instanceof HTTPException && error.status === 415) {
    return toHttpError(
      new HttpProblem(415, 'UNSUPPORTED_MEDIA_TYPE', 'Expected "content-type: application/json"'),
      report,
    );
  }
  if (!ContextError.isInstance(error)) {
    report(error);
    return {
      status: 500,
      body: {
        error: {
          code: 'INTERNAL_ERROR',
          message: 'Internal server error: the server log has the details',
          retryable: false,
        },
      },
      headers: {},
    };
  }
  const status = statusOf(error);
  if (status === 500) report(error);
  const headers: Record<string, string> = {};
  const body: ErrorBody = {
    error: {
      code: error.code,
      message: messageOf(error),
      retryable:
        error.code === 'VERSION_CONFLICT' ||
        error.code === 'STORAGE_UNAVAILABLE' ||
        error.code === 'CLOSED' ||
        BackpressureError.isInstance(error) ||
        (ExtractionError.isInstance(error) && error.retryable),
    },
  };
  const issues = (error as { issues?: unknown }).issues;
  if (error.code === 'INVALID_INPUT' && Array.isArray(issues) && issues.length > 0) {
    body.error.issues = issues as ValidationIssue[];
  }
  if (ExtractionError.isInstance(error)) {
    body.error.reason = error.reason;
    if (error.reason === 'rate_limit') {
      headers['retry-after'] = String(retryAfterSeconds(error.retryAfterMs ?? 1000));
    }
  }
  if (VersionConflictError.isInstance(error)) {
    body.error.currentVersion = error.currentVersion;
  }
  return { status, body, headers };
}
