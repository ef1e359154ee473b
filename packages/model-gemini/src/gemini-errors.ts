import { ExtractionError, MAX_RETRY_AFTER_MS } from '@ctx/core';
import { NETWORK_ERROR_CODES, parseRetryAfterHeaders } from '@ctx/core/adapter';
import { ApiError } from '@google/genai';
import { notTheReplyError } from './gemini-fetch.js';

/**
 * The `error` object of a Google API error body (`{ error: { code, message, status, details } }`),
 * each part undefined when the body lacks it.
 */
export interface GoogleApiErrorBody {
  /** The HTTP status code, repeated in the body. */
  code: number | undefined;
  /** Human-readable explanation from the provider. */
  message: string | undefined;
  /** The canonical status name, e.g. `RESOURCE_EXHAUSTED`, `INVALID_ARGUMENT`. */
  status: string | undefined;
  /** Typed details (`google.rpc.RetryInfo`, `google.rpc.ErrorInfo`, `google.rpc.QuotaFailure`…). */
  details: unknown[] | undefined;
}

/** What {@link toExtractionError} needs to know about the call that failed. */
export interface FailedCallContext {
  /** The caller's signal: when it fired, the failure is an abort. */
  callerSignal: AbortSignal | undefined;
  /** Whether the adapter's own time limit fired. */
  timedOut: boolean;
  /** The time limit, for the message. */
  timeoutMs: number;
  /** Headers of the failed HTTP response, when the adapter could capture them. */
  responseHeaders: Headers | undefined;
}

const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';
const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo';
const INVALID_KEY_REASONS = new Set(['API_KEY_INVALID', 'API_KEY_EXPIRED', 'API_KEY_NOT_FOUND']);
const FETCH_TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Reads the Google error body out of an SDK `ApiError`, whose message is the JSON-encoded response
 * body. Some proxies wrap the real body as a string inside `error.message`; that layer is unwrapped.
 */
export function parseGoogleErrorBody(message: string): GoogleApiErrorBody | undefined {
  const parsed = parseJson(message);
  const outer = isRecord(parsed) && isRecord(parsed.error) ? parsed.error : undefined;
  if (!outer) return undefined;
  const body: GoogleApiErrorBody = {
    code: typeof outer.code === 'number' ? outer.code : undefined,
    message: typeof outer.message === 'string' ? outer.message : undefined,
    status: typeof outer.status === 'string' ? outer.status : undefined,
    details: Array.isArray(outer.details) ? outer.details : undefined,
  };
  const inner = body.message?.trimStart().startsWith('{') ? parseJson(body.message) : undefined;
  if (isRecord(inner) && isRecord(inner.error)) {
    return { ...body, ...parseGoogleErrorBody(JSON.stringify(inner)) };
  }
  return body;
}

/**
 * Parses a protobuf JSON `Duration` such as `"7s"` or `"0.250s"` into milliseconds, at most
 * `MAX_RETRY_AFTER_MS`.
 */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)s\s*$/.exec(value);
  if (!match) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.ceil(Number(match[1]) * 1000));
}

/**
 * The wait the provider asked for, in milliseconds, at most `MAX_RETRY_AFTER_MS` (10 minutes): the
 * `retry-after-ms` header, then `retry-after` (seconds or an HTTP date), then the body's
 * `google.rpc.RetryInfo.retryDelay`.
 */
export function readRetryAfterMs(
  headers: Headers | undefined,
  details: unknown[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const fromHeaders = parseRetryAfterHeaders(headers, now);
  if (fromHeaders !== undefined) return fromHeaders;
  for (const detail of details ?? []) {
    if (isRecord(detail) && detail['@type'] === RETRY_INFO_TYPE) {
      const delay = parseDurationMs(detail.retryDelay);
      if (delay !== undefined) return delay;
    }
  }
  return undefined;
}

function errorInfoReason(details: unknown[] | undefined): string | undefined {
  for (const detail of details ?? []) {
    if (
      isRecord(detail) &&
      detail['@type'] === ERROR_INFO_TYPE &&
      typeof detail.reason === 'string'
    ) {
      return detail.reason;
    }
  }
  return undefined;
}

function isApiError(error: unknown): error is Error & { status: number } {
  return (
    error instanceof ApiError ||
    (error instanceof Error &&
      error.name === 'ApiError' &&
      typeof (error as { status?: unknown }).status === 'number')
  );
}

function isAbortError(error: unknown): boolean {
  return isRecord(error) && (error.name === 'AbortError' || error.name === 'TimeoutError');
}

function causeCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && isRecord(current); depth++) {
    if (typeof current.code === 'string') return current.code;
    current = current.cause;
  }
  return undefined;
}

function fromApiError(
  error: Error & { status: number },
  headers: Headers | undefined,
): ExtractionError {
  const status = error.status;
  const body = parseGoogleErrorBody(error.message);
  const statusName = body?.status ? ` ${body.status}` : '';
  const detail = body?.message?.trim() || error.message;
  const prefix = `Gemini API returned HTTP ${status}${statusName}: ${detail}`;
  const reason = errorInfoReason(body?.details);

  if (status === 401 || status === 403 || (reason && INVALID_KEY_REASONS.has(reason))) {
    return new ExtractionError(
      'authentication',
      `${prefix}. Check the API key (apiKey option, GEMINI_API_KEY or GOOGLE_API_KEY) and that it may use this model.`,
      { cause: error, status },
    );
  }
  if (status === 429) {
    const retryAfterMs = readRetryAfterMs(headers, body?.details);
    return new ExtractionError(
      'rate_limit',
      `${prefix}. The quota or rate limit is exhausted; retry ${retryAfterMs === undefined ? 'later' : `in ${Math.ceil(retryAfterMs / 1000)} s`} or raise the quota.`,
      { cause: error, status, retryAfterMs },
    );
  }
  if (status === 408) {
    return new ExtractionError(
      'timeout',
      `${prefix}. The provider gave up on the request; retry later.`,
      {
        cause: error,
        status,
      },
    );
  }
  if (status >= 500) {
    return new ExtractionError(
      'server_error',
      `${prefix}. The provider failed or is overloaded; retry later.`,
      { cause: error, status, retryAfterMs: readRetryAfterMs(headers, body?.details) },
    );
  }
  if (status >= 400) {
    return new ExtractionError(
      'bad_request',
      `${prefix}. The provider rejected the request: check the model id and the extractor options.`,
      { cause: error, status },
    );
  }
  return new ExtractionError('unknown', prefix, { cause: error, status });
}

/**
 * Maps whatever the SDK threw to a typed {@link ExtractionError}, keeping the original as `cause`:
 * caller abort → `aborted`; the adapter's time limit (or the SDK's own `httpOptions.timeout`) →
 * `timeout`; `ApiError` by status (401/403 and invalid keys → `authentication`, 429 → `rate_limit`
 * with `retryAfterMs`, 5xx → `server_error`, other 4xx → `bad_request`); connection failures →
 * `network`; a response body that is not JSON → a retryable `server_error`.
 */
export function toExtractionError(error: unknown, context: FailedCallContext): ExtractionError {
  if (ExtractionError.isInstance(error)) return error;
  if (context.callerSignal?.aborted) {
    return new ExtractionError('aborted', 'The extraction was aborted by the caller', {
      cause: error,
      retryable: false,
    });
  }
  if (context.timedOut) {
    return new ExtractionError(
      'timeout',
      `The Gemini call did not finish within ${context.timeoutMs} ms; retry later or raise timeoutMs`,
      { cause: error },
    );
  }
  if (isApiError(error)) return fromApiError(error, context.responseHeaders);
  if (isAbortError(error)) {
    return new ExtractionError(
      'timeout',
      'The Gemini call was cut off by the client time limit (httpOptions.timeout of the GoogleGenAI client)',
      { cause: error },
    );
  }
  const code = causeCode(error);
  if (code && FETCH_TIMEOUT_CODES.has(code)) {
    return new ExtractionError(
      'timeout',
      `The Gemini call timed out in the HTTP client (${code})`,
      {
        cause: error,
      },
    );
  }
  if (
    (code && NETWORK_ERROR_CODES.has(code)) ||
    (error instanceof TypeError && /fetch failed/i.test(error.message))
  ) {
    return new ExtractionError(
      'network',
      `Could not reach the Gemini API${code ? ` (${code})` : ''}: check the network and baseUrl`,
      { cause: error },
    );
  }
  if (error instanceof SyntaxError) {
    // Only an injected client gets here: the extractor's own client checks bodies in its fetch.
    return notTheReplyError(undefined, `a body that is not JSON (${error.message})`, error);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ExtractionError('unknown', `The Gemini call failed: ${message}`, { cause: error });
}
