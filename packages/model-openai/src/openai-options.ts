import { ValidationError, type ValidationIssue } from '@ctx/core';
import type OpenAI from 'openai';
import type { ChatRequestBody, ResponsesRequestBody } from './openai-wire.js';

/** Per-request options the extractor passes to the SDK. */
export interface OpenAIRequestOptions {
  signal?: AbortSignal;
  timeout?: number;
  maxRetries?: number;
}

/** What the extractor needs of a pending SDK request: its raw HTTP response. */
export interface OpenAIPendingRequest {
  asResponse(): Promise<Response>;
}

/**
 * The part of an `OpenAI` client the extractor uses. An `OpenAI` instance of `openai` 6 or 7 fits,
 * also one from another install of the package: the SDK's class has private fields, so two
 * installs' `OpenAI` types would not be assignable to each other, while this shape is.
 */
export interface OpenAIClientLike {
  responses: {
    create(body: ResponsesRequestBody, options?: OpenAIRequestOptions): OpenAIPendingRequest;
  };
  chat: {
    completions: {
      create(body: ChatRequestBody, options?: OpenAIRequestOptions): OpenAIPendingRequest;
    };
  };
}

/**
 * Which OpenAI endpoint the extractor calls.
 *
 * - `responses`: `POST /v1/responses`, the current OpenAI API (also served by recent Ollama and vLLM).
 * - `chat`: `POST /v1/chat/completions`, the endpoint every OpenAI-compatible server speaks (Ollama,
 *   vLLM, LM Studio, llama.cpp `llama-server`, hosted gateways).
 */
export type OpenAIExtractorApi = 'responses' | 'chat';

/**
 * How the extractor asks for JSON.
 *
 * - `json_schema`: structured output with the extraction schema and `strict: true`; the server
 *   constrains decoding to the schema.
 * - `json_object`: JSON mode; the schema is described in the prompt and the output is validated
 *   afterwards. For servers without schema support.
 * - `auto`: `json_schema`, switching to `json_object` for the rest of the extractor's life when the
 *   server answers 400/422 with an error about `response_format`, `json_schema` or the schema.
 */
export type OpenAIStructuredOutput = 'auto' | 'json_schema' | 'json_object';

/** The reasoning effort sent to reasoning models (`gpt-5*`, `o*`); model-dependent values. */
export type OpenAIReasoningEffort = NonNullable<OpenAI.ReasoningEffort>;

/** Options shared by both ways of building an extractor. */
export interface OpenAIExtractorCommonOptions {
  /**
   * The model id, e.g. `gpt-4.1-mini`, `gpt-4.1-nano`, `gpt-5-nano`, or a local model such as
   * `qwen2.5:7b` (Ollama). Required: there is no default, because the right model depends on the
   * server.
   */
  model: string;
  /**
   * The endpoint to call. Use `chat` for OpenAI-compatible servers that do not implement the
   * Responses API.
   * @default 'responses'
   */
  api?: OpenAIExtractorApi;
  /**
   * How JSON output is requested; see {@link OpenAIStructuredOutput}.
   * @default 'auto'
   */
  structuredOutput?: OpenAIStructuredOutput;
  /**
   * Time limit of one extraction in milliseconds, retries included. When it elapses the request is
   * cancelled and the extraction fails with reason `timeout`.
   * @default 60_000
   */
  timeoutMs?: number;
  /**
   * Upper bound on generated tokens (`max_output_tokens`; `max_tokens` or, for reasoning models,
   * `max_completion_tokens` on Chat Completions). Output cut off at this bound fails with reason
   * `truncated`.
   * @default 4096
   */
  maxOutputTokens?: number;
  /**
   * Sampling temperature. `null` never sends one (for models and servers that reject it).
   * @default 0, except for OpenAI reasoning models (`o1`, `o3`, `o4-mini`, `gpt-5*`), which reject
   * the parameter: for them nothing is sent unless a number is given here
   */
  temperature?: number | null;
  /**
   * Reasoning effort for reasoning models (`reasoning.effort` on the Responses API,
   * `reasoning_effort` on Chat Completions). `minimal` or `low` keeps extraction cheap and fast.
   * @default not sent (the model's default)
   */
  reasoningEffort?: OpenAIReasoningEffort;
  /**
   * Instructions added to every extraction (domain hints, what to keep), placed before the
   * request's own `instructions`.
   * @example 'Always keep ticket numbers and customer names.'
   */
  instructions?: string;
  /**
   * How many times the OpenAI SDK retries a failed request (429, 5xx, connection errors) within
   * one extraction. ctx's store already retries failed background updates with backoff, so the
   * default is no SDK retry. With an injected `client`, a value given here overrides the client's
   * setting for the extractor's requests; without one, the client's setting applies.
   * @default 0 for a client the extractor creates
   */
  maxRetries?: number;
}

/** Build the extractor on an `OpenAI` client you own (it is never closed by the extractor). */
export interface OpenAIExtractorClientOptions extends OpenAIExtractorCommonOptions {
  /**
   * An `OpenAI` client from the `openai` package (6 or 7), configured as you like. Its `baseURL`,
   * headers, fetch and proxy settings apply; `timeoutMs` and `maxRetries` given here override its
   * own for the extractor's requests.
   */
  client: OpenAIClientLike;
  apiKey?: never;
  baseURL?: never;
}

/** Let the extractor create its own `OpenAI` client. */
export interface OpenAIExtractorConnectionOptions extends OpenAIExtractorCommonOptions {
  client?: never;
  /**
   * The API key. Local servers ignore it but the SDK requires one: pass any non-empty string
   * (e.g. `'ollama'`).
   * @default process.env.OPENAI_API_KEY (read by the SDK)
   */
  apiKey?: string | undefined;
  /**
   * The server's base URL, including the `/v1` path: `http://127.0.0.1:11434/v1` (Ollama),
   * `http://127.0.0.1:8000/v1` (vLLM), `http://127.0.0.1:1234/v1` (LM Studio).
   * @default process.env.OPENAI_BASE_URL, else 'https://api.openai.com/v1' (read by the SDK)
   */
  baseURL?: string | undefined;
}

/**
 * Options of {@link createOpenAIExtractor}: a `client`, or `apiKey`/`baseURL` for a client the
 * extractor creates; plus the model and tuning options.
 */
export type OpenAIExtractorOptions =
  | OpenAIExtractorClientOptions
  | OpenAIExtractorConnectionOptions;

/** Options after validation and defaults. */
export interface ResolvedOpenAIOptions {
  model: string;
  api: OpenAIExtractorApi;
  structuredOutput: OpenAIStructuredOutput;
  timeoutMs: number;
  maxOutputTokens: number;
  temperature: number | undefined;
  reasoningEffort: OpenAIReasoningEffort | undefined;
  instructions: string | undefined;
  maxRetries: number | undefined;
  reasoningModel: boolean;
}

/** Default time limit of one extraction. */
export const DEFAULT_TIMEOUT_MS = 60_000;
/** Default output token bound. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;

const MAX_TIMER_MS = 2_147_483_647;
const APIS: readonly OpenAIExtractorApi[] = ['responses', 'chat'];
const STRUCTURED_OUTPUTS: readonly OpenAIStructuredOutput[] = [
  'auto',
  'json_schema',
  'json_object',
];
const REASONING_MODEL = /^(?:openai\/)?(?:o\d|gpt-5)/i;

/** True for OpenAI reasoning model ids, which reject `temperature` and `max_tokens`. */
export function isReasoningModel(model: string): boolean {
  return REASONING_MODEL.test(model);
}

function isPositiveInteger(value: unknown, max = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= max;
}

/** Validates the options and applies defaults; throws one `INVALID_CONFIG` error listing every problem. */
export function resolveOpenAIOptions(options: OpenAIExtractorOptions): ResolvedOpenAIOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError(
      'INVALID_CONFIG',
      'createOpenAIExtractor expects an options object such as { client, model } or { apiKey, baseURL, model }',
    );
  }
  const issues: ValidationIssue[] = [];
  const raw = options as unknown as Record<string, unknown>;
  if (typeof raw.model !== 'string' || raw.model.trim() === '') {
    issues.push({
      path: 'model',
      message: 'must be a non-empty model id such as "gpt-4.1-mini" (or your local model name)',
    });
  }
  if (raw.client !== undefined) {
    const client = raw.client as {
      responses?: { create?: unknown };
      chat?: { completions?: { create?: unknown } };
    };
    if (
      typeof client !== 'object' ||
      client === null ||
      typeof client.responses?.create !== 'function' ||
      typeof client.chat?.completions?.create !== 'function'
    ) {
      issues.push({
        path: 'client',
        message: 'must be an OpenAI client from the "openai" package',
      });
    }
    if (raw.apiKey !== undefined || raw.baseURL !== undefined) {
      issues.push({
        path: 'client',
        message: 'pass either client or apiKey/baseURL, not both (configure the client instead)',
      });
    }
  }
  if (raw.apiKey !== undefined && (typeof raw.apiKey !== 'string' || raw.apiKey === '')) {
    issues.push({
      path: 'apiKey',
      message: 'must be a non-empty string (local servers accept any value, e.g. "ollama")',
    });
  }
  if (raw.baseURL !== undefined) {
    if (typeof raw.baseURL !== 'string' || !URL.canParse(raw.baseURL)) {
      issues.push({
        path: 'baseURL',
        message: 'must be an absolute URL including /v1, e.g. "http://127.0.0.1:11434/v1"',
      });
    }
  }
  if (raw.api !== undefined && !APIS.includes(raw.api as OpenAIExtractorApi)) {
    issues.push({ path: 'api', message: 'must be "responses" or "chat"' });
  }
  if (
    raw.structuredOutput !== undefined &&
    !STRUCTURED_OUTPUTS.includes(raw.structuredOutput as OpenAIStructuredOutput)
  ) {
    issues.push({
      path: 'structuredOutput',
      message: 'must be "auto", "json_schema" or "json_object"',
    });
  }
  if (raw.timeoutMs !== undefined && !isPositiveInteger(raw.timeoutMs, MAX_TIMER_MS)) {
    issues.push({
      path: 'timeoutMs',
      message: `must be a positive integer number of milliseconds (at most ${MAX_TIMER_MS})`,
    });
  }
  if (raw.maxOutputTokens !== undefined && !isPositiveInteger(raw.maxOutputTokens)) {
    issues.push({ path: 'maxOutputTokens', message: 'must be a positive integer' });
  }
  if (
    raw.temperature !== undefined &&
    raw.temperature !== null &&
    (typeof raw.temperature !== 'number' ||
      !Number.isFinite(raw.temperature) ||
      raw.temperature < 0 ||
      raw.temperature > 2)
  ) {
    issues.push({ path: 'temperature', message: 'must be a number from 0 to 2, or null' });
  }
  if (
    raw.reasoningEffort !== undefined &&
    (typeof raw.reasoningEffort !== 'string' || raw.reasoningEffort === '')
  ) {
    issues.push({
      path: 'reasoningEffort',
      message: 'must be a reasoning effort such as "minimal", "low", "medium" or "high"',
    });
  }
  if (raw.instructions !== undefined && typeof raw.instructions !== 'string') {
    issues.push({ path: 'instructions', message: 'must be a string' });
  }
  if (
    raw.maxRetries !== undefined &&
    (typeof raw.maxRetries !== 'number' || !Number.isInteger(raw.maxRetries) || raw.maxRetries < 0)
  ) {
    issues.push({ path: 'maxRetries', message: 'must be a non-negative integer' });
  }
  if (issues.length > 0) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Invalid OpenAI extractor options: ${issues.map((issue) => `${issue.path} ${issue.message}`).join('; ')}`,
      { issues },
    );
  }
  const model = options.model;
  const reasoningModel = isReasoningModel(model);
  return {
    model,
    api: options.api ?? 'responses',
    structuredOutput: options.structuredOutput ?? 'auto',
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxOutputTokens: options.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS,
    temperature:
      options.temperature === null
        ? undefined
        : (options.temperature ?? (reasoningModel ? undefined : 0)),
    reasoningEffort: options.reasoningEffort,
    instructions: options.instructions?.trim() || undefined,
    maxRetries: options.maxRetries,
    reasoningModel,
  };
}
