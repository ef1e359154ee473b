import { ExtractionError } from '@ctx/core';
import { parseRetryAfterHeaders } from '@ctx/core/adapter';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  OpenAIError,
} from 'openai';

/** What the extractor knows about the call when it failed. */
export interface FailureContext {
  /** The caller's signal fired. */
  aborted: boolean;
  /** The extractor's own time limit elapsed. */
  timedOut: boolean;
  timeoutMs: number;
  /** The signal's reason when the caller aborted. */
  abortReason?: unknown;
}

interface HttpErrorLike {
  status: number;
  headers?: Headers;
  message: string;
  code?: string | null;
  param?: string | null;
}

function asHttpError(error: unknown): HttpErrorLike | undefined {
  if (error instanceof APIError && typeof error.status === 'number') {
    return error as HttpErrorLike;
  }
  // An APIError from another copy of the openai package (an app with two installs).
  if (
    error instanceof Error &&
    typeof (error as { status?: unknown }).status === 'number' &&
    typeof (error as { headers?: { get?: unknown } }).headers?.get === 'function'
  ) {
    return error as unknown as HttpErrorLike;
  }
  return undefined;
}

/**
 * True when a 400/422 answer says the server cannot do JSON-schema structured output, so JSON
 * mode is worth trying instead.
 */
export function isStructuredOutputUnsupported(error: unknown): boolean {
  const http = asHttpError(error);
  if (!http || (http.status !== 400 && http.status !== 422)) return false;
  const text = `${http.param ?? ''} ${http.message}`;
  return /response_format|json_schema|text\.format|structured output|schema/i.test(text);
}

function providerMessage(http: HttpErrorLike): string {
  return http.message.replace(/^\d{3}\s+/, '');
}

/**
 * Turns anything thrown while calling OpenAI or reading its reply into an {@link ExtractionError}
 * with the right `reason`, keeping the original as `cause`. An `ExtractionError` passes unchanged.
 */
export function toExtractionError(error: unknown, context: FailureContext): ExtractionError {
  if (ExtractionError.isInstance(error)) return error;
  if (context.aborted) {
    return new ExtractionError('aborted', 'The extraction was aborted by the caller', {
      cause: error ?? context.abortReason,
    });
  }
  if (context.timedOut || error instanceof APIConnectionTimeoutError) {
    return new ExtractionError(
      'timeout',
      `The OpenAI request did not complete within ${context.timeoutMs} ms; raise timeoutMs or choose a faster model`,
      { cause: error },
    );
  }
  if (error instanceof APIUserAbortError) {
    return new ExtractionError('aborted', 'The OpenAI request was aborted', { cause: error });
  }
  const http = asHttpError(error);
  if (http) return fromHttpError(http, error);
  if (error instanceof APIConnectionError) {
    return new ExtractionError(
      'network',
      `Could not reach the OpenAI server (${error.message}); check baseURL (it must include /v1) and that the server is running`,
      { cause: error },
    );
  }
  if (error instanceof OpenAIError) {
    return new ExtractionError('unknown', `The OpenAI SDK failed: ${error.message}`, {
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ExtractionError('unknown', `The OpenAI extraction failed: ${message}`, {
    cause: error,
  });
}

function fromHttpError(http: HttpErrorLike, cause: unknown): ExtractionError {
  const status = http.status;
  const detail = providerMessage(http);
  if (status === 401 || status === 403) {
    return new ExtractionError(
      'authentication',
      `OpenAI refused the credentials (HTTP ${status}: ${detail}); check the API key and that its project may use this model`,
      { cause, status },
    );
  }
  if (status === 429) {
    const retryAfterMs = parseRetryAfterHeaders(http.headers);
    const quota = http.code === 'insufficient_quota';
    return new ExtractionError(
      'rate_limit',
      quota
        ? `The OpenAI account has no quota left (HTTP 429: ${detail}); check billing, retrying will not help`
        : `OpenAI rate-limited the request (HTTP 429: ${detail})${retryAfterMs === undefined ? '' : `; retry after ${retryAfterMs} ms`}`,
      { cause, status, retryAfterMs, retryable: !quota },
    );
  }
  if (status === 408) {
    return new ExtractionError('timeout', `The OpenAI server timed out (HTTP 408: ${detail})`, {
      cause,
      status,
    });
  }
  if (status >= 500) {
    return new ExtractionError(
      'server_error',
      `The OpenAI server failed (HTTP ${status}: ${detail}); retry later`,
      { cause, status, retryAfterMs: parseRetryAfterHeaders(http.headers) },
    );
  }
  if (status === 409) {
    return new ExtractionError('server_error', `The OpenAI server reported a conflict: ${detail}`, {
      cause,
      status,
    });
  }
  if (status >= 400) {
    return new ExtractionError(
      'bad_request',
      `OpenAI rejected the request (HTTP ${status}: ${detail}); check the model id and options`,
      { cause, status },
    );
  }
  return new ExtractionError('unknown', `Unexpected OpenAI response (HTTP ${status}: ${detail})`, {
    cause,
    status,
  });
}
