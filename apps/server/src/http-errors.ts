import {
  ContextError,
  ExtractionError,
  type ValidationIssue,
  VersionConflictError,
} from '@ctx/core';

/**
 * Codes of error responses: every {@link ContextError} code, plus the ones only HTTP has.
 *
 * - `NOT_FOUND`: no such session, or no such route.
 * - `UNSUPPORTED_MEDIA_TYPE`: a body that is not `application/json`.
 * - `PAYLOAD_TOO_LARGE`: a body over the server's limit.
 * - `SHUTTING_DOWN`: the server is draining before exit; retry on another instance.
 * - `INTERNAL_ERROR`: a bug; the server log has the details.
 */
export type ServerErrorCode =
  | ContextError['code']
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
  };
}

/** An error response: status, JSON body and extra headers. */
export interface HttpError {
  status: 400 | 403 | 404 | 409 | 413 | 415 | 500 | 502 | 503 | 504;
  body: ErrorBody;
  headers: Record<string, string>;
}

/** An error raised by the HTTP layer itself (unknown route, bad media type, draining). */
export class HttpProblem extends Error {
  readonly status: HttpError['status'];
  readonly code: ServerErrorCode;
  readonly retryable: boolean;

  constructor(
    status: HttpError['status'],
    code: ServerErrorCode,
    message: string,
    retryable = false,
  ) {
    super(message);
    this.name = 'HttpProblem';
    this.status = status;
    this.code = code;
    this.retryable = retryable;
  }
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
      headers: error.code === 'SHUTTING_DOWN' ? { connection: 'close' } : {},
    };
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
      headers['retry-after'] = String(Math.max(1, Math.ceil((error.retryAfterMs ?? 1000) / 1000)));
    }
  }
  if (VersionConflictError.isInstance(error)) {
    body.error.currentVersion = error.currentVersion;
  }
  return { status, body, headers };
}
