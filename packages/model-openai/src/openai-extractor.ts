import {
  type ContextExtractor,
  type ExtractionRequest,
  type ExtractionResult,
  ValidationError,
} from '@ctx/core';
import {
  buildExtractionPrompt,
  type ExtractionPrompt,
  getExtractionJsonSchema,
  type JsonSchema,
  parseExtractionOutput,
  type ToleratedOutput,
} from '@ctx/core/adapter';
import OpenAI from 'openai';
import { isStructuredOutputUnsupported, toExtractionError } from './openai-errors.js';
import {
  type OpenAIClientLike,
  type OpenAIExtractorApi,
  type OpenAIExtractorOptions,
  type OpenAIPendingRequest,
  type OpenAIStructuredOutput,
  type ResolvedOpenAIOptions,
  resolveOpenAIOptions,
} from './openai-options.js';
import {
  type ModelReply,
  readChatReply,
  readReplyBody,
  readResponsesReply,
} from './openai-reply.js';
import { buildChatBody, buildResponsesBody, type OutputFormat } from './openai-wire.js';

/** A {@link ContextExtractor} backed by the OpenAI API or an OpenAI-compatible server. */
export interface OpenAIExtractor extends ContextExtractor {
  /** The model id requests are sent with. */
  readonly model: string;
  /** The endpoint in use. */
  readonly api: OpenAIExtractorApi;
  /**
   * The output format the next request will use. Starts as `json_schema` (or `json_object` when
   * configured so) and becomes `json_object` after an `auto` fallback.
   */
  readonly outputFormat: OutputFormat;
}

function createClient(
  options: OpenAIExtractorOptions,
  resolved: ResolvedOpenAIOptions,
): OpenAIClientLike {
  if (options.client) return options.client;
  try {
    return new OpenAI({
      ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
      ...(options.baseURL === undefined ? {} : { baseURL: options.baseURL }),
      maxRetries: resolved.maxRetries ?? 0,
      timeout: resolved.timeoutMs,
    });
  } catch (error) {
    // The SDK throws here when no API key is given and OPENAI_API_KEY is unset.
    throw new ValidationError(
      'INVALID_CONFIG',
      `Could not create the OpenAI client: ${error instanceof Error ? error.message : String(error)}. Pass apiKey (any non-empty string for local servers that ignore it), set OPENAI_API_KEY, or pass a client`,
      { cause: error, issues: [{ path: 'apiKey', message: 'missing' }] },
    );
  }
}

function mergeInstructions(...parts: (string | undefined)[]): string | undefined {
  const kept = parts.map((part) => part?.trim()).filter((part): part is string => Boolean(part));
  return kept.length > 0 ? kept.join('\n\n') : undefined;
}

/** Settles with `promise`, or rejects as soon as `signal` aborts (the SDK sleeps between retries). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** One extraction's cancellation: the caller's signal and the time limit, told apart. */
function createDeadline(timeoutMs: number, callerSignal: AbortSignal | undefined) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  const onAbort = () => controller.abort(callerSignal?.reason);
  callerSignal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut && !callerSignal?.aborted;
    },
    dispose() {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Creates a {@link ContextExtractor} that asks an OpenAI model (or any OpenAI-compatible server)
 * for the next session context.
 *
 * Each extraction is one request: core's extraction prompt (the previous snapshot plus only the
 * new messages) and its JSON schema as strict structured output, on the Responses API by default
 * or on Chat Completions with `api: 'chat'`. The reply is validated with core's
 * `parseExtractionOutput`; refusals, cut-off output, invalid JSON, schema mismatches, HTTP errors,
 * timeouts and aborts all surface as `ExtractionError`s with a `reason`. Invalid options throw a
 * `ValidationError` (`INVALID_CONFIG`) right away.
 *
 * A client passed in is used as is and never closed; a client the extractor creates makes no SDK
 * retries by default (ctx's store owns retries).
 *
 * @example
 * ```ts
 * import OpenAI from 'openai';
 * import { SessionContextStore, createMemoryRepository } from '@ctx/core';
 * import { createOpenAIExtractor } from '@ctx/model-openai';
 *
 * const extractor = createOpenAIExtractor({ client: new OpenAI(), model: 'gpt-4.1-mini' });
 * const store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
 *
 * // A local model through Ollama's OpenAI-compatible endpoint:
 * const local = createOpenAIExtractor({
 *   baseURL: 'http://127.0.0.1:11434/v1',
 *   apiKey: 'ollama',
 *   model: 'qwen2.5:7b',
 *   api: 'chat',
 * });
 * ```
 */
export function createOpenAIExtractor(options: OpenAIExtractorOptions): OpenAIExtractor {
  const resolved = resolveOpenAIOptions(options);
  const client = createClient(options, resolved);
  const structuredOutput: OpenAIStructuredOutput = resolved.structuredOutput;
  let format: OutputFormat = structuredOutput === 'json_object' ? 'json_object' : 'json_schema';
  // An injected client keeps its own retry setting unless maxRetries is given.
  const perRequestRetries = options.client ? resolved.maxRetries : undefined;

  async function send(
    prompt: ExtractionPrompt,
    schema: JsonSchema,
    sendFormat: OutputFormat,
    signal: AbortSignal,
  ): Promise<ModelReply> {
    const requestOptions = {
      signal,
      timeout: resolved.timeoutMs,
      ...(perRequestRetries === undefined ? {} : { maxRetries: perRequestRetries }),
    };
    const pending: OpenAIPendingRequest =
      resolved.api === 'chat'
        ? client.chat.completions.create(
            buildChatBody(resolved, prompt, schema, sendFormat),
            requestOptions,
          )
        : client.responses.create(
            buildResponsesBody(resolved, prompt, schema, sendFormat),
            requestOptions,
          );
    // The SDK still sends, retries and turns HTTP errors into APIErrors; the body of a successful
    // answer is read and checked here (see openai-reply.ts).
    const response = await untilAborted(pending.asResponse(), signal);
    const body = await untilAborted(readReplyBody(response, resolved.api), signal);
    return resolved.api === 'chat' ? readChatReply(body) : readResponsesReply(body);
  }

  async function extract(
    request: ExtractionRequest,
    callOptions: { signal?: AbortSignal } = {},
  ): Promise<ExtractionResult> {
    const callerSignal = callOptions.signal;
    if (callerSignal?.aborted) {
      throw toExtractionError(callerSignal.reason, {
        aborted: true,
        timedOut: false,
        timeoutMs: resolved.timeoutMs,
      });
    }
    const { instructions: requestInstructions, ...rest } = request;
    const instructions = mergeInstructions(resolved.instructions, requestInstructions);
    const prompt = buildExtractionPrompt({
      ...rest,
      ...(instructions === undefined ? {} : { instructions }),
    });
    const schema = getExtractionJsonSchema(request.planning, request.fields);
    const deadline = createDeadline(resolved.timeoutMs, callerSignal);
    try {
      let reply: ModelReply;
      const firstFormat = format;
      try {
        reply = await send(prompt, schema, firstFormat, deadline.signal);
      } catch (error) {
        const canFallBack =
          structuredOutput === 'auto' &&
          firstFormat === 'json_schema' &&
          !deadline.signal.aborted &&
          isStructuredOutputUnsupported(error);
        if (!canFallBack) throw error;
        format = 'json_object';
        reply = await send(prompt, schema, 'json_object', deadline.signal);
      }
      let tolerated: ToleratedOutput | undefined;
      const draft = parseExtractionOutput(reply.text, {
        planning: request.planning,
        ...(request.fields ? { fields: request.fields } : {}),
        onTolerated: (report) => {
          tolerated = report;
        },
      });
      return {
        draft,
        ...(reply.usage ? { usage: reply.usage } : {}),
        ...(tolerated ? { tolerated } : {}),
      };
    } catch (error) {
      throw toExtractionError(error, {
        aborted: Boolean(callerSignal?.aborted),
        timedOut: deadline.timedOut,
        timeoutMs: resolved.timeoutMs,
        abortReason: callerSignal?.reason,
      });
    } finally {
      deadline.dispose();
    }
  }

  return {
    model: resolved.model,
    api: resolved.api,
    get outputFormat() {
      return format;
    },
    extract,
  };
}
