import { DEFAULT_GEMINI_MODEL, DEFAULT_OPENAI_MODEL, LOCAL_SERVER_API_KEY } from '@ctx/config';
import type { Message } from '@ctx/core';
import { ApiError, GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';

/** Environment variables the reply model reads (a subset of `process.env`). */
export type ReplyModelEnv = Readonly<Record<string, string | undefined>>;

/** What the chat asks the reply model: the system prompt plus the recent messages, oldest first. */
export interface ReplyRequest {
  system: string;
  messages: Message[];
}

/** The model that writes the assistant's replies. */
export interface ReplyModel {
  /** Which SDK talks to the model. */
  readonly provider: 'openai' | 'gemini';
  /** The model id sent with every request. */
  readonly model: string;
  /** One line for the banner, e.g. `OpenAI-compatible server at http://localhost:11434/v1 (llama3.2)`. */
  readonly description: string;
  /** The reply text. Throws a {@link ReplyModelError} when the model does not answer. */
  reply(request: ReplyRequest, options?: { signal?: AbortSignal }): Promise<string>;
}

/** The reply model failed (HTTP error, connection refused, empty answer). */
export class ReplyModelError extends Error {
  /** HTTP status of the provider's answer, when there was one. */
  readonly status: number | undefined;

  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ReplyModelError';
    this.status = options?.status;
  }
}

const REPLY_TIMEOUT_MS = 120_000;

/** How to get a model endpoint; printed when the environment names none. */
export const NO_MODEL_HELP = `ctx chat needs a chat model for its replies, and none is configured.
Set one of these and run it again:

  OpenAI           OPENAI_API_KEY=sk-...            (optional: OPENAI_MODEL, default ${DEFAULT_OPENAI_MODEL})
  Gemini           GEMINI_API_KEY=...               (optional: GEMINI_MODEL, default ${DEFAULT_GEMINI_MODEL})
  a local server   OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_MODEL=llama3.2
                   (Ollama shown; vLLM, LM Studio and other OpenAI-compatible servers work the same way)

Get an OpenAI key at https://platform.openai.com/api-keys, a Gemini key at
https://aistudio.google.com/apikey, or install Ollama from https://ollama.com and run
"ollama pull llama3.2".`;

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function createOpenAIReplyModel(env: ReplyModelEnv): ReplyModel {
  const apiKey = nonEmpty(env.OPENAI_API_KEY);
  const baseURL = nonEmpty(env.OPENAI_BASE_URL);
  const configuredModel = nonEmpty(env.OPENAI_MODEL);
  if (!configuredModel && baseURL && !apiKey) {
    throw new ReplyModelError(
      `OPENAI_BASE_URL is set (${baseURL}) but OPENAI_MODEL is not: set OPENAI_MODEL to a model your server serves (e.g. OPENAI_MODEL=llama3.2 for Ollama)`,
    );
  }
  const model = configuredModel ?? DEFAULT_OPENAI_MODEL;
  // Local servers ignore the key, but the SDK refuses to start without one.
  const client = new OpenAI({
    apiKey: apiKey ?? LOCAL_SERVER_API_KEY,
    ...(baseURL ? { baseURL } : {}),
    timeout: REPLY_TIMEOUT_MS,
  });
  const where = baseURL ? `OpenAI-compatible server at ${baseURL}` : 'OpenAI';
  return {
    provider: 'openai',
    model,
    description: `${where} (${model})`,
    async reply(request, options) {
      let completion: OpenAI.Chat.Completions.ChatCompletion;
      try {
        completion = await client.chat.completions.create(
          {
            model,
            messages: [
              { role: 'system', content: request.system },
              ...request.messages.map((message) =>
                message.role === 'assistant'
                  ? { role: 'assistant' as const, content: message.content }
                  : { role: 'user' as const, content: message.content },
              ),
            ],
          },
          options?.signal ? { signal: options.signal } : {},
        );
      } catch (error) {
        if (error instanceof OpenAI.APIConnectionError) {
          throw new ReplyModelError(
            `could not reach ${baseURL ?? 'api.openai.com'}: ${describeError(error.cause ?? error)}`,
            { cause: error },
          );
        }
        if (error instanceof OpenAI.APIError) {
          throw new ReplyModelError(`${where} answered ${error.status}: ${error.message}`, {
            cause: error,
            ...(error.status === undefined ? {} : { status: error.status }),
          });
        }
        throw new ReplyModelError(describeError(error), { cause: error });
      }
      const message = completion.choices[0]?.message;
      const text = message?.content?.trim() || message?.refusal?.trim();
      if (!text) {
        throw new ReplyModelError(
          `${where} returned no text (finish reason: ${completion.choices[0]?.finish_reason ?? 'none'})`,
        );
      }
      return text;
    },
  };
}

function createGeminiReplyModel(env: ReplyModelEnv, apiKey: string): ReplyModel {
  const model = nonEmpty(env.GEMINI_MODEL) ?? DEFAULT_GEMINI_MODEL;
  const baseUrl = nonEmpty(env.GEMINI_BASE_URL);
  const client = new GoogleGenAI({
    apiKey,
    httpOptions: { timeout: REPLY_TIMEOUT_MS, ...(baseUrl ? { baseUrl } : {}) },
  });
  const where = baseUrl ? `Gemini API at ${baseUrl}` : 'Gemini';
  return {
    provider: 'gemini',
    model,
    description: `${where} (${model})`,
    async reply(request, options) {
      let text: string | undefined;
      let finishReason: string | undefined;
      try {
        const response = await client.models.generateContent({
          model,
          contents: request.messages.map((message) => ({
            role: message.role === 'assistant' ? 'model' : 'user',
            parts: [{ text: message.content }],
          })),
          config: {
            systemInstruction: request.system,
            ...(options?.signal ? { abortSignal: options.signal } : {}),
          },
        });
        text = response.text?.trim();
        finishReason =
          response.candidates?.[0]?.finishReason ?? response.promptFeedback?.blockReason;
      } catch (error) {
        if (error instanceof ApiError) {
          throw new ReplyModelError(`${where} answered ${error.status}: ${error.message}`, {
            cause: error,
            status: error.status,
          });
        }
        throw new ReplyModelError(`could not reach ${where}: ${describeError(error)}`, {
          cause: error,
        });
      }
      if (!text) {
        throw new ReplyModelError(
          `${where} returned no text (finish reason: ${finishReason ?? 'none'})`,
        );
      }
      return text;
    },
  };
}

/**
 * Picks the reply model from the environment, the same way the context extractor is picked:
 *
 * - `OPENAI_API_KEY` and/or `OPENAI_BASE_URL` → Chat Completions through the `openai` SDK
 *   (`OPENAI_MODEL`, default `gpt-4.1-mini`; required with a base URL and no key).
 *   Works with OpenAI and with OpenAI-compatible servers (Ollama, vLLM, LM Studio).
 * - else `GEMINI_API_KEY` (or `GOOGLE_API_KEY`) → `generateContent` through `@google/genai`
 *   (`GEMINI_MODEL`, default `@ctx/config`'s `DEFAULT_GEMINI_MODEL`; `GEMINI_BASE_URL`, without
 *   the API version, points it at another endpoint).
 * - else `null`: there is no model to talk to (print {@link NO_MODEL_HELP}).
 *
 * Throws a {@link ReplyModelError} when the configuration is incomplete.
 *
 * @example
 * ```ts
 * const model = createReplyModel(process.env);
 * if (!model) console.log(NO_MODEL_HELP);
 * else console.log(await model.reply({ system: 'Be brief.', messages: [{ role: 'user', content: 'Hi' }] }));
 * ```
 */
export function createReplyModel(env: ReplyModelEnv = process.env): ReplyModel | null {
  if (nonEmpty(env.OPENAI_API_KEY) || nonEmpty(env.OPENAI_BASE_URL)) {
    return createOpenAIReplyModel(env);
  }
  const geminiKey = nonEmpty(env.GEMINI_API_KEY) ?? nonEmpty(env.GOOGLE_API_KEY);
  if (geminiKey) return createGeminiReplyModel(env, geminiKey);
  return null;
}
