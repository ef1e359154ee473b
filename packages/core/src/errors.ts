const MARKER = Symbol.for('ctx.error');

// Each subclass sets its own global marker, so `XError.isInstance` recognises errors made by
// another copy of this package and never confuses one subclass with another.
function markAs(error: object, marker: symbol): void {
  Object.defineProperty(error, marker, { value: true, enumerable: false });
}

function hasMarker(error: unknown, marker: symbol): boolean {
  return (
    ContextError.isInstance(error) && (error as unknown as Record<symbol, unknown>)[marker] === true
  );
}

const VALIDATION_MARKER = Symbol.for('ctx.error.ValidationError');
const VERSION_CONFLICT_MARKER = Symbol.for('ctx.error.VersionConflictError');
const EXTRACTION_MARKER = Symbol.for('ctx.error.ExtractionError');
const STORAGE_MARKER = Symbol.for('ctx.error.StorageError');
const OWNERSHIP_MARKER = Symbol.for('ctx.error.OwnershipError');
const BACKPRESSURE_MARKER = Symbol.for('ctx.error.BackpressureError');

/**
 * Stable machine-readable error codes. Switch on `error.code`, never on messages.
 *
 * - `INVALID_INPUT`: an argument (session id, message, snapshot, cursor…) failed validation.
 * - `INVALID_CONFIG`: a store, repository or extractor was built with invalid options.
 * - `VERSION_CONFLICT`: a compare-and-set save lost to another writer; see {@link VersionConflictError}.
 * - `EXTRACTION_FAILED`: the model call or its output failed; see {@link ExtractionError}.
 * - `STORAGE_UNAVAILABLE`: the storage backend could not be reached (connection refused or lost, timeout, busy).
 * - `STORAGE_ERROR`: the backend answered with an error that is not an outage.
 * - `SCHEMA_MISMATCH`: the database is not a ctx database, or its schema is newer than this code.
 * - `OWNERSHIP_MISMATCH`: the session belongs to another user.
 * - `BACKPRESSURE`: the session's turn log holds the maximum of pending turns; see {@link BackpressureError}.
 * - `CLOSED`: the repository or store was used after `close()`.
 */
export type ContextErrorCode =
  | 'INVALID_INPUT'
  | 'INVALID_CONFIG'
  | 'VERSION_CONFLICT'
  | 'EXTRACTION_FAILED'
  | 'STORAGE_UNAVAILABLE'
  | 'STORAGE_ERROR'
  | 'SCHEMA_MISMATCH'
  | 'OWNERSHIP_MISMATCH'
  | 'BACKPRESSURE'
  | 'CLOSED';

/**
 * Base class of every error ctx throws. Carries a stable {@link ContextErrorCode} and the original
 * error as `cause`.
 *
 * Use {@link ContextError.isInstance} rather than `instanceof`: it also recognises errors thrown by
 * another copy of `@ctx/core` (duplicate installs, bundled adapters).
 *
 * @example
 * ```ts
 * try { await store.update(input) }
 * catch (error) {
 *   if (ContextError.isInstance(error) && error.code === 'VERSION_CONFLICT') { … }
 * }
 * ```
 */
export class ContextError extends Error {
  readonly [MARKER] = true;
  /** Stable machine-readable code. */
  readonly code: ContextErrorCode;
  /** The error this one wraps (driver, SDK, validation), if any. */
  declare readonly cause?: unknown;

  constructor(code: ContextErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ContextError';
    this.code = code;
  }

  /** True for any ctx error, including ones created by another copy of this package. */
  static isInstance(error: unknown): error is ContextError {
    return (
      typeof error === 'object' &&
      error !== null &&
      (error as Record<symbol, unknown>)[MARKER] === true &&
      typeof (error as { code?: unknown }).code === 'string'
    );
  }

  /** True when `error` is a ctx error with the given code. */
  static hasCode<C extends ContextErrorCode>(
    error: unknown,
    code: C,
  ): error is ContextError & { code: C } {
    return ContextError.isInstance(error) && error.code === code;
  }
}

/** One validation problem: where (`path`) and what. */
export interface ValidationIssue {
  path: string;
  message: string;
}

/** `INVALID_INPUT` or `INVALID_CONFIG`, with the list of problems found. */
export class ValidationError extends ContextError {
  readonly issues: ValidationIssue[];

  constructor(
    code: 'INVALID_INPUT' | 'INVALID_CONFIG',
    message: string,
    options?: { cause?: unknown; issues?: ValidationIssue[] },
  ) {
    super(code, message, options);
    markAs(this, VALIDATION_MARKER);
    this.name = 'ValidationError';
    this.issues = options?.issues ?? [];
  }

  /** True for a {@link ValidationError}, including one created by another copy of this package. */
  static override isInstance(error: unknown): error is ValidationError {
    return hasMarker(error, VALIDATION_MARKER);
  }
}

/**
 * A compare-and-set save found another version than the one expected. `currentVersion` is the
 * version stored now (`null` when the session does not exist).
 */
export class VersionConflictError extends ContextError {
  readonly sessionId: string;
  readonly expectedVersion: number | null;
  readonly currentVersion: number | null;

  constructor(options: {
    sessionId: string;
    expectedVersion: number | null;
    currentVersion: number | null;
    cause?: unknown;
  }) {
    super(
      'VERSION_CONFLICT',
      `Session "${options.sessionId}" is at version ${options.currentVersion ?? 'none (absent)'}, expected ${options.expectedVersion ?? 'none (absent)'}`,
      { cause: options.cause },
    );
    markAs(this, VERSION_CONFLICT_MARKER);
    this.name = 'VersionConflictError';
    this.sessionId = options.sessionId;
    this.expectedVersion = options.expectedVersion;
    this.currentVersion = options.currentVersion;
  }

  /** True for a {@link VersionConflictError}, including one created by another copy of this package. */
  static override isInstance(error: unknown): error is VersionConflictError {
    return hasMarker(error, VERSION_CONFLICT_MARKER);
  }
}

/**
 * Why an extraction failed.
 *
 * - `authentication`: bad or missing credentials (HTTP 401/403).
 * - `rate_limit`: the provider throttled the call (HTTP 429); see `retryAfterMs`.
 * - `server_error`: the provider failed (HTTP 5xx, overloaded).
 * - `network`: the provider could not be reached.
 * - `timeout`: the call exceeded its time limit.
 * - `aborted`: the caller's `AbortSignal` fired.
 * - `bad_request`: the provider rejected the request (HTTP 400/404/422: unknown model, bad schema).
 * - `refusal`: the model refused to answer.
 * - `truncated`: the output was cut off (token limit, safety stop).
 * - `empty`: the model returned nothing.
 * - `invalid_json`: the output is not JSON.
 * - `schema_mismatch`: the JSON does not match the extraction schema or its limits.
 * - `unknown`: anything else.
 */
export type ExtractionFailureReason =
  | 'authentication'
  | 'rate_limit'
  | 'server_error'
  | 'network'
  | 'timeout'
  | 'aborted'
  | 'bad_request'
  | 'refusal'
  | 'truncated'
  | 'empty'
  | 'invalid_json'
  | 'schema_mismatch'
  | 'unknown';

const RETRYABLE_REASONS: ReadonlySet<ExtractionFailureReason> = new Set([
  'rate_limit',
  'server_error',
  'network',
  'timeout',
  'truncated',
  'empty',
  'invalid_json',
  'schema_mismatch',
]);

/**
 * The longest wait a provider's `retry-after` hint is taken at: 10 minutes. Longer hints (a proxy's
 * `retry-after: 100000000000000000000000`, a date years ahead) are clamped to it, so a bad header
 * can neither park a retry loop for years nor overflow a timer or a `Retry-After` sent onwards.
 */
export const MAX_RETRY_AFTER_MS = 600_000;

/** A usable wait in whole milliseconds, clamped to {@link MAX_RETRY_AFTER_MS}; else undefined. */
function toRetryAfterMs(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.ceil(value));
}

/** `EXTRACTION_FAILED`: the model call or its output failed. Nothing was written. */
export class ExtractionError extends ContextError {
  readonly reason: ExtractionFailureReason;
  /** Whether trying again later may succeed (rate limits, outages, a bad sample). */
  readonly retryable: boolean;
  /** The provider's HTTP status, when there was one. */
  readonly status: number | undefined;
  /**
   * How long the provider asked us to wait (from `retry-after`), in whole milliseconds, at most
   * {@link MAX_RETRY_AFTER_MS}; undefined when it gave no usable hint.
   */
  readonly retryAfterMs: number | undefined;

  constructor(
    reason: ExtractionFailureReason,
    message: string,
    options?: {
      cause?: unknown;
      status?: number | undefined;
      retryAfterMs?: number | undefined;
      retryable?: boolean;
    },
  ) {
    super('EXTRACTION_FAILED', message, options);
    markAs(this, EXTRACTION_MARKER);
    this.name = 'ExtractionError';
    this.reason = reason;
    this.status = options?.status;
    this.retryAfterMs = toRetryAfterMs(options?.retryAfterMs);
    this.retryable = options?.retryable ?? RETRYABLE_REASONS.has(reason);
  }

  /** True for an {@link ExtractionError}, including one created by another copy of this package. */
  static override isInstance(error: unknown): error is ExtractionError {
    return hasMarker(error, EXTRACTION_MARKER);
  }
}

/** `STORAGE_UNAVAILABLE` (an outage: retry later) or `STORAGE_ERROR` (the backend refused). */
export class StorageError extends ContextError {
  constructor(
    code: 'STORAGE_UNAVAILABLE' | 'STORAGE_ERROR' | 'SCHEMA_MISMATCH' | 'CLOSED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    markAs(this, STORAGE_MARKER);
    this.name = 'StorageError';
  }

  /** True for a {@link StorageError}, including one created by another copy of this package. */
  static override isInstance(error: unknown): error is StorageError {
    return hasMarker(error, STORAGE_MARKER);
  }
}

/** `OWNERSHIP_MISMATCH`: the session exists and belongs to another user. */
export class OwnershipError extends ContextError {
  readonly sessionId: string;

  constructor(sessionId: string, options?: { cause?: unknown }) {
    super('OWNERSHIP_MISMATCH', `Session "${sessionId}" belongs to another user`, options);
    markAs(this, OWNERSHIP_MARKER);
    this.name = 'OwnershipError';
    this.sessionId = sessionId;
  }

  /** True for an {@link OwnershipError}, including one created by another copy of this package. */
  static override isInstance(error: unknown): error is OwnershipError {
    return hasMarker(error, OWNERSHIP_MARKER);
  }
}

/**
 * `BACKPRESSURE`: a turn could not be recorded because the session already has `limit` pending
 * turns. Nothing was written; the turn can be recorded once a fold has made room (retryable).
 */
export class BackpressureError extends ContextError {
  readonly sessionId: string;
  /** The pending turns the session holds. */
  readonly pending: number;
  /** The repository's maximum of pending turns per session. */
  readonly limit: number;

  constructor(options: { sessionId: string; pending: number; limit: number; cause?: unknown }) {
    super(
      'BACKPRESSURE',
      `Session "${options.sessionId}" has ${options.pending} pending turns (the limit is ${options.limit}): fold them before recording more`,
      { cause: options.cause },
    );
    markAs(this, BACKPRESSURE_MARKER);
    this.name = 'BackpressureError';
    this.sessionId = options.sessionId;
    this.pending = options.pending;
    this.limit = options.limit;
  }

  /** True for a {@link BackpressureError}, including one created by another copy of this package. */
  static override isInstance(error: unknown): error is BackpressureError {
    return hasMarker(error, BACKPRESSURE_MARKER);
  }
}

/** True for errors that are worth retrying later: outages, rate limits, bad samples, back-pressure. */
export function isRetryableError(error: unknown): boolean {
  if (ExtractionError.isInstance(error)) return error.retryable;
  return (
    ContextError.hasCode(error, 'STORAGE_UNAVAILABLE') ||
    ContextError.hasCode(error, 'BACKPRESSURE')
  );
}

/**
 * Error codes of Node sockets and of its `fetch` (undici) that mean "the other side cannot be
 * reached right now": refused, reset, unresolvable, unreachable, timed out, closed.
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * The wait an HTTP response asks for, in whole milliseconds, clamped to
 * {@link MAX_RETRY_AFTER_MS}: the `retry-after-ms` header, else `retry-after` as seconds or as an
 * HTTP date (a date in the past is 0). `undefined` when neither is usable (negative numbers,
 * exponents, words).
 */
export function parseRetryAfterHeaders(
  headers: { get(name: string): string | null } | undefined,
  now: number = Date.now(),
): number | undefined {
  const decimal = /^\d+(?:\.\d+)?$/;
  const milliseconds = headers?.get('retry-after-ms')?.trim();
  // A run of digits too long for a double reads as Infinity: still a (very long) delay.
  if (milliseconds && decimal.test(milliseconds)) {
    return toRetryAfterMs(Math.min(Number(milliseconds), MAX_RETRY_AFTER_MS));
  }
  const value = headers?.get('retry-after')?.trim();
  if (!value) return undefined;
  if (decimal.test(value)) {
    return toRetryAfterMs(Math.min(Number(value) * 1000, MAX_RETRY_AFTER_MS));
  }
  // An HTTP date always names its weekday or month; Date.parse alone would take "-5" for a year.
  if (!/[a-z]/i.test(value)) return undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : toRetryAfterMs(Math.max(0, date - now));
}
