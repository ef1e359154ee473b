import { ExtractionError, type TokenUsage } from '@ctx/core';
import { toTokenUsage } from '@ctx/core/adapter';
import type { OpenAIExtractorApi } from './openai-options.js';

// A successful HTTP answer is read here, not by the SDK: the body is untrusted until it has the
// shape of the endpoint's reply. A proxy's HTML page, a body cut off in transit or an unrelated
// JSON document must become a clear, retryable error rather than a TypeError from deep inside the
// SDK (`Cannot use 'in' operator…`), and both SDK majors must behave the same (openai 7 returns
// `undefined` for an empty JSON body where 6 threw).

/** The model's text and token usage, read from a successful reply. */
export interface ModelReply {
  text: string;
  usage: TokenUsage | undefined;
}

type JsonObject = Record<string, unknown>;

const ENDPOINT_NAMES: Record<OpenAIExtractorApi, string> = {
  responses: 'a Responses API object',
  chat: 'a chat completion',
};

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function quote(text: string, max = 300): string {
  const single = text.replace(/\s+/g, ' ').trim();
  return single.length > max ? `${single.slice(0, max)}…` : single;
}

function notTheReply(status: number, what: string, cause?: unknown): ExtractionError {
  return new ExtractionError(
    'server_error',
    `The OpenAI-compatible server answered HTTP ${status} with ${what}. A proxy, gateway or load balancer between ctx and the model server may have answered instead, or the reply was cut off; check baseURL (it must include /v1) and retry later`,
    { status, retryable: true, ...(cause === undefined ? {} : { cause }) },
  );
}

/**
 * Reads the body of a successful HTTP response as the JSON object of `api`'s reply. Anything else
 * (an empty body, text that is not JSON, JSON that is not an object) fails with a retryable
 * `server_error` that names the content type and quotes the start of the body.
 */
export async function readReplyBody(
  response: Response,
  api: OpenAIExtractorApi,
): Promise<JsonObject> {
  const text = await response.text();
  const contentType = response.headers.get('content-type') ?? 'no content type';
  if (text.trim() === '') {
    throw notTheReply(response.status, `an empty body (${contentType})`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw notTheReply(
      response.status,
      `a body that is not JSON (${contentType}, ${text.length} characters, starting "${quote(text, 120)}")`,
      error,
    );
  }
  const shape = !isObject(body)
    ? Array.isArray(body)
      ? 'an array'
      : body === null
        ? 'null'
        : `a ${typeof body}`
    : api === 'responses' && body.status !== 'failed' && !Array.isArray(body.output)
      ? 'an object without an "output" array'
      : api === 'chat' && !Array.isArray(body.choices)
        ? 'an object without a "choices" array'
        : undefined;
  if (shape !== undefined || !isObject(body)) {
    throw notTheReply(response.status, `JSON that is not ${ENDPOINT_NAMES[api]} (${shape})`);
  }
  return body;
}

function arrayOf(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

/**
 * Reads a Responses API reply (as checked by {@link readReplyBody}): refusals, incomplete and
 * failed responses become errors; token counts that are not numbers are ignored.
 */
export function readResponsesReply(response: JsonObject): ModelReply {
  if (response.status === 'failed') {
    const error = isObject(response.error) ? response.error : {};
    const code = typeof error.code === 'string' ? error.code : undefined;
    const message = typeof error.message === 'string' ? error.message : 'no details';
    const reason =
      code === 'rate_limit_exceeded'
        ? 'rate_limit'
        : code === 'invalid_prompt'
          ? 'bad_request'
          : 'server_error';
    throw new ExtractionError(
      reason,
      `OpenAI could not generate the response (${code ?? 'failed'}: ${message})`,
    );
  }
  const contents = arrayOf(response.output).flatMap((item) =>
    item.type === 'message' ? arrayOf(item.content) : [],
  );
  const refusal = contents.find((content) => content.type === 'refusal');
  if (refusal) {
    throw new ExtractionError(
      'refusal',
      `The model refused to update the context: ${quote(String(refusal.refusal ?? ''))}`,
    );
  }
  const text = contents
    .map((content) =>
      content.type === 'output_text' && typeof content.text === 'string' ? content.text : '',
    )
    .join('');
  if (response.status === 'incomplete') {
    const details = isObject(response.incomplete_details) ? response.incomplete_details : {};
    const why = typeof details.reason === 'string' ? details.reason : undefined;
    throw new ExtractionError(
      'truncated',
      why === 'content_filter'
        ? 'The output was stopped by the content filter'
        : `The output was cut off (${why ?? 'incomplete'}); raise maxOutputTokens`,
    );
  }
  const usage = isObject(response.usage) ? response.usage : {};
  return { text, usage: toTokenUsage(usage.input_tokens, usage.output_tokens) };
}

/**
 * Reads a Chat Completions reply (as checked by {@link readReplyBody}): refusals and cut-off output
 * become errors; token counts that are not numbers are ignored.
 */
export function readChatReply(completion: JsonObject): ModelReply {
  const choice = arrayOf(completion.choices)[0];
  if (!choice) throw new ExtractionError('empty', 'The server returned no choices');
  const message = isObject(choice.message) ? choice.message : {};
  if (typeof message.refusal === 'string' && message.refusal) {
    throw new ExtractionError(
      'refusal',
      `The model refused to update the context: ${quote(message.refusal)}`,
    );
  }
  if (choice.finish_reason === 'length') {
    throw new ExtractionError(
      'truncated',
      'The output was cut off at the token limit (finish_reason "length"); raise maxOutputTokens',
    );
  }
  if (choice.finish_reason === 'content_filter') {
    throw new ExtractionError(
      'truncated',
      'The output was stopped by the content filter (finish_reason "content_filter")',
    );
  }
  const usage = isObject(completion.usage) ? completion.usage : {};
  return {
    text: typeof message.content === 'string' ? message.content : '',
    usage: toTokenUsage(usage.prompt_tokens, usage.completion_tokens),
  };
}
