import { createOpenAI } from '@ai-sdk/openai';
import { DEFAULT_OPENAI_MODEL, LOCAL_SERVER_API_KEY } from '@ctx/config';
import type { wrapLanguageModel } from 'ai';

/** Environment variables the reply model reads (a subset of `process.env`). */
export type ReplyModelEnv = Readonly<Record<string, string | undefined>>;

/** The AI SDK model that writes the assistant's replies, and how to describe it. */
export interface ReplyModel {
  readonly model: Parameters<typeof wrapLanguageModel>[0]['model'];
  /** One line for the banner, e.g. `OpenAI-compatible server at http://localhost:11434/v1 (llama3.2)`. */
  readonly description: string;
}

/** The reply model's configuration is incomplete; the message says what to set. */
export class ReplyModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplyModelError';
  }
}

/** How to get a model endpoint; printed when the environment names none. */
export const NO_MODEL_HELP = `ctx ai-sdk-chat needs a chat model for its replies, and none is configured.
Set one of these and run it again:

  OpenAI           OPENAI_API_KEY=sk-...            (optional: OPENAI_MODEL, default ${DEFAULT_OPENAI_MODEL})
  a local server   OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_MODEL=llama3.2
                   (Ollama shown; vLLM, LM Studio and other OpenAI-compatible servers work the same way)

Get an OpenAI key at https://platform.openai.com/api-keys, or install Ollama from
https://ollama.com and run "ollama pull llama3.2".`;

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

/**
 * Picks the reply model from the environment: `OPENAI_API_KEY` and/or `OPENAI_BASE_URL` → the
 * Chat Completions API through `@ai-sdk/openai` (`OPENAI_MODEL`, default `gpt-4.1-mini`; required
 * with a base URL and no key), which OpenAI and OpenAI-compatible servers (Ollama, vLLM, LM Studio)
 * all speak. `null` when neither is set. Throws a {@link ReplyModelError} when the configuration is
 * incomplete.
 */
export function createReplyModel(env: ReplyModelEnv = process.env): ReplyModel | null {
  const apiKey = nonEmpty(env.OPENAI_API_KEY);
  const baseURL = nonEmpty(env.OPENAI_BASE_URL);
  if (!apiKey && !baseURL) return null;
  const configuredModel = nonEmpty(env.OPENAI_MODEL);
  if (!configuredModel && baseURL && !apiKey) {
    throw new ReplyModelError(
      `OPENAI_BASE_URL is set (${baseURL}) but OPENAI_MODEL is not: set OPENAI_MODEL to a model your server serves (e.g. OPENAI_MODEL=llama3.2 for Ollama)`,
    );
  }
  const modelId = configuredModel ?? DEFAULT_OPENAI_MODEL;
  // Local servers ignore the key, but the provider refuses to start without one.
  const provider = createOpenAI({
    apiKey: apiKey ?? LOCAL_SERVER_API_KEY,
    ...(baseURL ? { baseURL } : {}),
  });
  const where = baseURL ? `OpenAI-compatible server at ${baseURL}` : 'OpenAI';
  return {
    model: provider.chat(modelId),
    description: `${where} (${modelId}, Chat Completions through the AI SDK)`,
  };
}
