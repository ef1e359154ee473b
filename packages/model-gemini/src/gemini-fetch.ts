import { ExtractionError } from '@ctx/core';

// The `fetch` of a client the extractor creates. It does two things the SDK does not:
// - it keeps the headers of a failed response (the SDK's `ApiError` keeps only the status and
//   body, and `retry-after` lives in the headers);
// - it checks that a successful response's body is a JSON object before the SDK parses it. A
//   proxy's HTML page, a body cut off in transit, or a bare `"ok"` would otherwise surface as a
//   SyntaxError or a TypeError from inside the SDK (`Cannot create property 'sdkHttpResponse' on
//   string`) instead of a clear, retryable error.

function quote(text: string, max: number): string {
  const single = text.replace(/\s+/g, ' ').trim();
  return single.length > max ? `${single.slice(0, max)}…` : single;
}

/** Why `text` is not a JSON object, or undefined when it is one. */
function notAJsonObject(text: string): string | undefined {
  if (text.trim() === '') return 'an empty body';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `a body that is not JSON (${text.length} characters, starting "${quote(text, 120)}")`;
  }
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) return undefined;
  const kind = Array.isArray(body) ? 'an array' : body === null ? 'null' : `a ${typeof body}`;
  return `JSON that is not a Gemini response object (${kind})`;
}

/**
 * The retryable `server_error` for a successful HTTP status whose body is not the provider's JSON.
 * Also used for SDK-parsed responses of the wrong shape (see gemini-response.ts).
 */
export function notTheReplyError(status: number | undefined, what: string, cause?: unknown) {
  return new ExtractionError(
    'server_error',
    `The Gemini API answered${status === undefined ? '' : ` HTTP ${status}`} with ${what}. A proxy, gateway or load balancer between ctx and the API may have answered instead, or the reply was cut off; check baseUrl and retry later`,
    { retryable: true, ...(status === undefined ? {} : { status }), ...(cause ? { cause } : {}) },
  );
}

/** A `fetch` for the SDK that checks successful bodies and remembers failed responses' headers. */
export function createGuardedFetch() {
  let failedHeaders: Headers | undefined;
  const guardedFetch = async (
    input: Parameters<typeof fetch>[0],
    init?: RequestInit,
  ): Promise<Response> => {
    const response = await fetch(input, init);
    if (!response.ok) {
      failedHeaders = response.headers;
      return response;
    }
    const text = await response.text();
    const problem = notAJsonObject(text);
    if (problem) {
      const contentType = response.headers.get('content-type') ?? 'no content type';
      throw notTheReplyError(response.status, `${problem}, content type ${contentType}`);
    }
    return new Response(text, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
  return { fetch: guardedFetch, failedHeaders: () => failedHeaders };
}
