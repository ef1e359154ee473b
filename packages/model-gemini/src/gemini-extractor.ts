import {
  type ContextExtractor,
  ExtractionError,
  type ExtractionRequest,
  type ExtractionResult,
  ValidationError,
  type ValidationIssue,
} from '@ctx/core';
import { buildExtractionPrompt, getExtractionJsonSchema } from '@ctx/core/adapter';
import {
  type GenerateContentConfig,
  type GenerateContentParameters,
  GoogleGenAI,
  type HttpOptions,
  type ThinkingConfig,
} from '@google/genai';
import { toExtractionError } from './gemini-errors.js';
import { createGuardedFetch } from './gemini-fetch.js';
import { readExtractionResponse } from './gemini-response.js';

/** Default time limit of one extraction call, in milliseconds. */
export const GEMINI_DEFAULT_TIMEOUT_MS = 60_000;
/** API version of the clients the extractor creates (the SDK's own default differs by major). */
export const GEMINI_DEFAULT_API_VERSION = 'v1beta';
/** Default output token limit of one extraction call (thinking tokens included). */
export const GEMINI_DEFAULT_MAX_OUTPUT_TOKENS = 8_192;

/** Options shared by both ways of building a {@link createGeminiExtractor}. */
export interface GeminiExtractorCommonOptions {
  /**
   * The Gemini model id. A Flash-Lite model (e.g. `"gemini-3.1-flash-lite"`) is cheap, fast and
   * good enough for extraction; a Flash model helps with long, dense conversations. `models/…` and
   * `tunedModels/…` names are accepted too. Required: model ids change, so ctx picks none for you.
   * @example 'gemini-3.1-flash-lite'
   */
  model: string;
  /**
   * Time limit of one extraction call in milliseconds, covering connection, generation and
   * reading the body. When it fires the call fails with reason `timeout`.
   * @default 60_000
   */
  timeoutMs?: number;
  /**
   * Upper bound on generated tokens (`generationConfig.maxOutputTokens`). Thinking models count
   * their thoughts against it; a reply that hits it fails with reason `truncated`.
   * @default 8_192
   */
  maxOutputTokens?: number;
  /**
   * Sampling temperature (0–2). Left out by default so the model's own default applies: Google
   * recommends keeping Gemini 3 models at their default of 1.0; for Gemini 2.x models `0` gives the
   * most stable extractions.
   * @default undefined (the model's default)
   */
  temperature?: number;
  /**
   * Thinking settings passed through as `thinkingConfig`, e.g. `{ thinkingBudget: 0 }` to switch
   * thinking off on Gemini 2.5 Flash, or `{ thinkingLevel: ThinkingLevel.LOW }` on Gemini 3.
   * @default undefined (the model's default)
   */
  thinkingConfig?: ThinkingConfig;
  /**
   * Extra instructions for every extraction (domain hints, what to keep). They come before the
   * request's own `instructions`; both are kept.
   * @default undefined
   */
  instructions?: string;
  /**
   * How many times the SDK retries a failed HTTP call (429, 408, 5xx) before giving up. ctx's store
   * already retries failed updates with backoff, so the default is no SDK retry. With an injected
   * `client` the client's own retry settings apply unless this is set.
   * @default 0
   */
  maxRetries?: number;
}

/**
 * The part of a `GoogleGenAI` client the extractor uses. A `GoogleGenAI` of `@google/genai` 2 or 3
 * fits, also one from another install of the package: the SDK's class has protected members, so
 * two installs' `GoogleGenAI` types would not be assignable to each other. The reply is typed
 * `unknown` because the extractor checks its shape itself.
 */
export interface GeminiClientLike {
  models: {
    generateContent(params: GenerateContentParameters): Promise<unknown>;
  };
}

/** Build the extractor on a `GoogleGenAI` client you own (it is never closed or reconfigured). */
export interface GeminiExtractorClientOptions extends GeminiExtractorCommonOptions {
  /**
   * A configured `GoogleGenAI` client (Gemini API or Vertex AI) from `@google/genai` 2 or 3. Its
   * own API version applies (the SDK's default is `v1beta` in 2 and `v1` in 3).
   */
  client: GeminiClientLike;
  apiKey?: never;
  baseUrl?: never;
  apiVersion?: never;
  headers?: never;
}

/** Let the extractor create its own `GoogleGenAI` client for the Gemini API. */
export interface GeminiExtractorApiKeyOptions extends GeminiExtractorCommonOptions {
  client?: never;
  /**
   * The Gemini API key. Falls back to the `GOOGLE_API_KEY` or `GEMINI_API_KEY` environment variable
   * (the SDK's order); building fails with `INVALID_CONFIG` when none is set.
   * @default process.env.GOOGLE_API_KEY ?? process.env.GEMINI_API_KEY
   */
  apiKey?: string | undefined;
  /**
   * Base URL of a Gemini-compatible server, without the API version (the SDK appends
   * `/v1beta/models/<model>:generateContent`), e.g. a proxy or a local gateway.
   * @default 'https://generativelanguage.googleapis.com'
   * @example 'http://127.0.0.1:4000'
   */
  baseUrl?: string | undefined;
  /**
   * API version path segment. Set explicitly on the client the extractor creates, so `@google/genai`
   * 2 (whose default is `v1beta`) and 3 (default `v1`, or `GOOGLE_GENAI_API_VERSION`) call the same
   * endpoint.
   * @default 'v1beta'
   */
  apiVersion?: string;
  /**
   * Extra HTTP headers sent with every call (for example a gateway's own auth header).
   * @default undefined
   */
  headers?: Record<string, string>;
}

/** Options of {@link createGeminiExtractor}: an injected client, or an API key (and base URL). */
export type GeminiExtractorOptions = GeminiExtractorClientOptions | GeminiExtractorApiKeyOptions;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The explicit key, else the environment in the SDK's order (`GOOGLE_API_KEY` wins). */
function resolveApiKey(apiKey: unknown): unknown {
  return apiKey ?? (process.env.GOOGLE_API_KEY || process.env.GEMINI_API_KEY);
}

function validateOptions(options: unknown): ValidationIssue[] {
  if (!isRecord(options)) return [{ path: '', message: 'options must be an object' }];
  const issues: ValidationIssue[] = [];
  const { model, timeoutMs, maxOutputTokens, temperature, maxRetries, instructions } = options;
  if (typeof model !== 'string' || model.trim() === '') {
    issues.push({
      path: 'model',
      message: 'model must be a non-empty model id such as "gemini-3.1-flash-lite"',
    });
  } else if (/\.\.|[?&\s]/.test(model)) {
    issues.push({ path: 'model', message: 'model must not contain "..", "?", "&" or whitespace' });
  }
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && (timeoutMs as number) > 0)) {
    issues.push({
      path: 'timeoutMs',
      message: 'timeoutMs must be a positive integer (milliseconds)',
    });
  }
  if (
    maxOutputTokens !== undefined &&
    !(Number.isInteger(maxOutputTokens) && (maxOutputTokens as number) > 0)
  ) {
    issues.push({ path: 'maxOutputTokens', message: 'maxOutputTokens must be a positive integer' });
  }
  if (
    temperature !== undefined &&
    !(typeof temperature === 'number' && temperature >= 0 && temperature <= 2)
  ) {
    issues.push({ path: 'temperature', message: 'temperature must be a number from 0 to 2' });
  }
  if (maxRetries !== undefined && !(Number.isInteger(maxRetries) && (maxRetries as number) >= 0)) {
    issues.push({ path: 'maxRetries', message: 'maxRetries must be a non-negative integer' });
  }
  if (instructions !== undefined && typeof instructions !== 'string') {
    issues.push({ path: 'instructions', message: 'instructions must be a string' });
  }
  if (options.thinkingConfig !== undefined && !isRecord(options.thinkingConfig)) {
    issues.push({ path: 'thinkingConfig', message: 'thinkingConfig must be an object' });
  }
  if (options.client !== undefined) {
    const models = isRecord(options.client) ? options.client.models : undefined;
    if (!isRecord(models) || typeof models.generateContent !== 'function') {
      issues.push({ path: 'client', message: 'client must be a GoogleGenAI instance' });
    }
    for (const key of ['apiKey', 'baseUrl', 'apiVersion', 'headers'] as const) {
      if (options[key] !== undefined) {
        issues.push({
          path: key,
          message: `${key} cannot be combined with client: configure the client instead`,
        });
      }
    }
  } else {
    const apiKey = resolveApiKey(options.apiKey);
    if (typeof apiKey !== 'string' || apiKey.trim() === '') {
      issues.push({
        path: 'apiKey',
        message: 'pass apiKey (or a client), or set the GEMINI_API_KEY environment variable',
      });
    }
    if (
      options.baseUrl !== undefined &&
      (typeof options.baseUrl !== 'string' || !URL.canParse(options.baseUrl))
    ) {
      issues.push({
        path: 'baseUrl',
        message: 'baseUrl must be an absolute URL such as "http://127.0.0.1:4000"',
      });
    }
    if (options.apiVersion !== undefined && typeof options.apiVersion !== 'string') {
      issues.push({ path: 'apiVersion', message: 'apiVersion must be a string such as "v1beta"' });
    }
    if (options.headers !== undefined && !isRecord(options.headers)) {
      issues.push({
        path: 'headers',
        message: 'headers must be an object of header names to values',
      });
    }
  }
  return issues;
}

/**
 * A per-call signal that fires on the caller's abort or on the time limit, and remembers which.
 */
function createCallSignal(callerSignal: AbortSignal | undefined, timeoutMs: number) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`Timed out after ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  const onAbort = () => controller.abort(callerSignal?.reason);
  callerSignal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose: () => {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Creates a {@link ContextExtractor} backed by Google Gemini through the official `@google/genai`
 * SDK (`models.generateContent`). Each call sends core's extraction prompt as the system
 * instruction plus one user turn holding the previous snapshot and the new messages, and asks for
 * JSON that matches core's extraction schema (`responseMimeType: 'application/json'` with
 * `responseJsonSchema`). The reply is parsed with core's parser; every failure is an
 * `ExtractionError` with a `reason`.
 *
 * Pass a `client` you own (it is used as is and never closed), or an `apiKey` (and optionally a
 * `baseUrl`) to let the extractor create one with SDK retries switched off.
 *
 * @throws {ValidationError} `INVALID_CONFIG` when an option is invalid or no API key is available.
 * @example
 * ```ts
 * import { SessionContextStore, createMemoryRepository } from '@ctx/core';
 * import { createGeminiExtractor } from '@ctx/model-gemini';
 *
 * const extractor = createGeminiExtractor({
 *   apiKey: process.env.GEMINI_API_KEY,
 *   model: 'gemini-3.1-flash-lite',
 * });
 * const store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
 * ```
 */
export function createGeminiExtractor(options: GeminiExtractorOptions): ContextExtractor {
  const issues = validateOptions(options);
  if (issues.length > 0) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Invalid Gemini extractor options: ${issues.map((issue) => `${issue.path || 'options'}: ${issue.message}`).join('; ')}`,
      { issues },
    );
  }
  const model = options.model.trim();
  const timeoutMs = options.timeoutMs ?? GEMINI_DEFAULT_TIMEOUT_MS;
  const maxOutputTokens = options.maxOutputTokens ?? GEMINI_DEFAULT_MAX_OUTPUT_TOKENS;
  const ownsClient = options.client === undefined;
  const client =
    options.client ??
    new GoogleGenAI({
      apiKey: resolveApiKey(options.apiKey) as string,
      // Pinned: @google/genai 3 switched its default from v1beta to v1; the extractor keeps one
      // documented endpoint whichever major is installed.
      apiVersion: options.apiVersion ?? GEMINI_DEFAULT_API_VERSION,
      httpOptions: {
        ...(options.baseUrl === undefined ? {} : { baseUrl: options.baseUrl }),
        ...(options.headers === undefined ? {} : { headers: { ...options.headers } }),
        ...(options.maxRetries ? { retryOptions: { attempts: options.maxRetries + 1 } } : {}),
      },
    });

  return {
    async extract(
      request: ExtractionRequest,
      callOptions?: { signal?: AbortSignal },
    ): Promise<ExtractionResult> {
      const callerSignal = callOptions?.signal;
      if (callerSignal?.aborted) {
        throw new ExtractionError('aborted', 'The extraction was aborted by the caller', {
          cause: callerSignal.reason,
          retryable: false,
        });
      }
      const { instructions: requestInstructions, ...rest } = request;
      const instructions = [options.instructions, requestInstructions]
        .map((text) => text?.trim())
        .filter(Boolean)
        .join('\n\n');
      const prompt = buildExtractionPrompt({ ...rest, ...(instructions ? { instructions } : {}) });
      const call = createCallSignal(callerSignal, timeoutMs);
      const capture = ownsClient ? createGuardedFetch() : undefined;
      const httpOptions: HttpOptions = {};
      if (capture) httpOptions.fetch = capture.fetch;
      if (!ownsClient && options.maxRetries !== undefined) {
        httpOptions.retryOptions = { attempts: options.maxRetries + 1 };
      }
      const config: GenerateContentConfig = {
        systemInstruction: prompt.system,
        responseMimeType: 'application/json',
        responseJsonSchema: getExtractionJsonSchema(request.planning, request.fields),
        maxOutputTokens,
        automaticContinuation: false,
        abortSignal: call.signal,
        ...(Object.keys(httpOptions).length > 0 ? { httpOptions } : {}),
        ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
        ...(options.thinkingConfig === undefined ? {} : { thinkingConfig: options.thinkingConfig }),
      };
      try {
        const response = await client.models.generateContent({
          model,
          contents: [{ role: 'user', parts: [{ text: prompt.user }] }],
          config,
        });
        return readExtractionResponse(response, request.planning, maxOutputTokens, request.fields);
      } catch (error) {
        throw toExtractionError(error, {
          callerSignal,
          timedOut: call.timedOut(),
          timeoutMs,
          responseHeaders: capture?.failedHeaders(),
        });
      } finally {
        call.dispose();
      }
    },
  };
}
