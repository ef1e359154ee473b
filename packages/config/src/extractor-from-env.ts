import { type ContextExtractor, ValidationError } from '@ctx/core';
import { createExtractiveExtractor, type ExtractiveExtractorOptions } from '@ctx/model-extractive';
import { importOptionalPeer } from './optional-peer.js';

/** The model used for OpenAI when neither `CTX_MODEL` nor `OPENAI_MODEL` names one. */
export const DEFAULT_OPENAI_MODEL = 'gpt-4.1-mini';
/** The model used for Gemini when neither `CTX_MODEL` nor `GEMINI_MODEL` names one. */
export const DEFAULT_GEMINI_MODEL = 'gemini-3.1-flash-lite';
/** The API key sent to an OpenAI-compatible server given by `OPENAI_BASE_URL` without a key. */
export const LOCAL_SERVER_API_KEY = 'ctx-local';

/** Which extractor {@link createExtractorFromEnv} built. */
export type ExtractorProvider = 'openai' | 'gemini' | 'extractive';

/** Options of {@link createExtractorFromEnv}, applied to whichever extractor is chosen. */
export interface ExtractorFromEnvOptions {
  /**
   * Time limit of one model call, in milliseconds (OpenAI and Gemini).
   * @default the adapter's default (60_000)
   */
  timeoutMs?: number;
  /**
   * Instructions added to every extraction (OpenAI and Gemini).
   * @example 'Always keep ticket numbers.'
   */
  instructions?: string;
  /**
   * SDK retries per call (OpenAI and Gemini).
   * @default 0
   */
  maxRetries?: number;
  /**
   * Options of the extractive extractor, when it is chosen.
   * @default {}
   */
  extractive?: ExtractiveExtractorOptions;
}

/** What {@link createExtractorFromEnv} returns. */
export interface ExtractorFromEnv {
  /** The extractor, ready for a `SessionContextStore`. */
  extractor: ContextExtractor;
  /** Which kind of extractor it is. */
  provider: ExtractorProvider;
  /** The model id requests are sent with; `null` for the extractive extractor. */
  model: string | null;
  /**
   * One human-readable line for startup logs, e.g. `OpenAI gpt-4.1-mini via
   * http://127.0.0.1:11434/v1 (Chat Completions API)`. Never contains a key.
   */
  description: string;
}

type Environment = Record<string, string | undefined>;

interface Choice {
  provider: ExtractorProvider;
  model: string | null;
  reason?: string;
}

function read(env: Environment, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function configError(variable: string, message: string): ValidationError {
  return new ValidationError('INVALID_CONFIG', `Invalid ${variable}: ${message}`, {
    issues: [{ path: variable, message }],
  });
}

const CTX_MODEL_FORMS =
  'use "openai:<model>", "gemini:<model>", "openai", "gemini", "extractive" or a bare model id';

function choose(env: Environment): Choice {
  const hasOpenAI =
    read(env, 'OPENAI_API_KEY') !== undefined || read(env, 'OPENAI_BASE_URL') !== undefined;
  const hasGemini =
    read(env, 'GEMINI_API_KEY') !== undefined || read(env, 'GOOGLE_API_KEY') !== undefined;
  const requested = read(env, 'CTX_MODEL');
  if (requested === undefined) {
    if (hasOpenAI) return { provider: 'openai', model: null };
    if (hasGemini) return { provider: 'gemini', model: null };
    return {
      provider: 'extractive',
      model: null,
      reason: 'no model: set OPENAI_API_KEY or GEMINI_API_KEY for real summaries',
    };
  }
  if (/\s/.test(requested)) {
    throw configError('CTX_MODEL', `"${requested}" contains whitespace; ${CTX_MODEL_FORMS}`);
  }
  if (requested === 'extractive') {
    return { provider: 'extractive', model: null, reason: 'CTX_MODEL=extractive' };
  }
  const prefixed = /^(openai|gemini|extractive)(?::(.*))?$/i.exec(requested);
  if (prefixed) {
    const provider = prefixed[1]?.toLowerCase() as ExtractorProvider;
    const model = prefixed[2];
    if (provider === 'extractive') {
      throw configError('CTX_MODEL', `"${requested}": the extractive extractor takes no model`);
    }
    if (model !== undefined && model === '') {
      throw configError(
        'CTX_MODEL',
        `"${requested}" names no model after the colon; ${CTX_MODEL_FORMS}`,
      );
    }
    if (provider === 'openai' && !hasOpenAI) {
      throw configError(
        'CTX_MODEL',
        `"${requested}" needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server)`,
      );
    }
    if (provider === 'gemini' && !hasGemini) {
      throw configError('CTX_MODEL', `"${requested}" needs GEMINI_API_KEY (or GOOGLE_API_KEY)`);
    }
    return { provider, model: model ?? null };
  }
  const looksLikeGemini = /^(?:models\/|tunedModels\/)?gemini/i.test(requested);
  if (looksLikeGemini && hasGemini) return { provider: 'gemini', model: requested };
  if (hasOpenAI) return { provider: 'openai', model: requested };
  if (hasGemini) return { provider: 'gemini', model: requested };
  throw configError(
    'CTX_MODEL',
    `"${requested}" names a model but no provider is configured: set OPENAI_API_KEY (or OPENAI_BASE_URL for a local server) or GEMINI_API_KEY, or use CTX_MODEL=extractive`,
  );
}

function isOpenAIHost(baseURL: string): boolean {
  return new URL(baseURL).hostname === 'api.openai.com';
}

/**
 * Builds the extractor an environment asks for, so an app switches models (or runs without one) by
 * configuration. The model adapters are imported only when chosen: `@ctx/model-openai` and
 * `@ctx/model-gemini` are optional peers, and a missing one fails with `INVALID_CONFIG` naming what
 * to install. Nothing is called over the network here.
 *
 * Variables (empty values count as unset):
 * - `CTX_MODEL`: `openai:<model>`, `gemini:<model>`, `openai`, `gemini`, `extractive`, or a bare
 *   model id (Gemini when it starts with `gemini` and a Gemini key is set, else the provider whose
 *   credentials are set, OpenAI first). Unset: chosen from the credentials below.
 * - `OPENAI_API_KEY`, `OPENAI_BASE_URL` (including `/v1`), `OPENAI_MODEL`, `CTX_OPENAI_API`
 *   (`responses` or `chat`). A base URL without a key means a local OpenAI-compatible server
 *   (Ollama, vLLM, LM Studio): a placeholder key is sent. A base URL other than api.openai.com
 *   uses Chat Completions unless `CTX_OPENAI_API=responses`; OpenAI itself uses the Responses API.
 * - `GEMINI_API_KEY` or `GOOGLE_API_KEY`, `GEMINI_MODEL`, `GEMINI_BASE_URL` (a proxy, without the
 *   API version).
 * - With none of them, the LLM-free extractive extractor.
 *
 * Throws `INVALID_CONFIG` for a malformed `CTX_MODEL`, `CTX_OPENAI_API` or base URL, or a provider
 * named without its credentials.
 *
 * @example
 * ```ts
 * const { extractor, description } = await createExtractorFromEnv();
 * console.log(`ctx: extracting with ${description}`);
 * ```
 */
export async function createExtractorFromEnv(
  env: Environment = process.env,
  options: ExtractorFromEnvOptions = {},
): Promise<ExtractorFromEnv> {
  const choice = choose(env);
  const common = {
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.instructions === undefined ? {} : { instructions: options.instructions }),
    ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
  };

  if (choice.provider === 'openai') {
    const apiKey = read(env, 'OPENAI_API_KEY');
    const baseURL = read(env, 'OPENAI_BASE_URL');
    if (baseURL !== undefined && !URL.canParse(baseURL)) {
      throw configError(
        'OPENAI_BASE_URL',
        `"${baseURL}" is not an absolute URL; include the /v1 path, e.g. http://127.0.0.1:11434/v1`,
      );
    }
    const requestedApi = read(env, 'CTX_OPENAI_API');
    if (requestedApi !== undefined && requestedApi !== 'responses' && requestedApi !== 'chat') {
      throw configError('CTX_OPENAI_API', `"${requestedApi}": use "responses" or "chat"`);
    }
    const api =
      (requestedApi as 'responses' | 'chat' | undefined) ??
      (baseURL !== undefined && !isOpenAIHost(baseURL) ? 'chat' : 'responses');
    const model = choice.model ?? read(env, 'OPENAI_MODEL') ?? DEFAULT_OPENAI_MODEL;
    const { createOpenAIExtractor } = await importOptionalPeer(() => import('@ctx/model-openai'), {
      packageName: '@ctx/model-openai',
      install: '@ctx/model-openai openai',
      purpose: 'The OpenAI extractor',
    });
    const extractor = createOpenAIExtractor({
      ...common,
      model,
      api,
      apiKey: apiKey ?? LOCAL_SERVER_API_KEY,
      baseURL: baseURL ?? 'https://api.openai.com/v1',
    });
    const where = baseURL === undefined ? '' : ` via ${baseURL}`;
    const wire = api === 'chat' ? 'Chat Completions API' : 'Responses API';
    return {
      extractor,
      provider: 'openai',
      model,
      description: `OpenAI ${model}${where} (${wire})`,
    };
  }

  if (choice.provider === 'gemini') {
    const apiKey = read(env, 'GEMINI_API_KEY') ?? read(env, 'GOOGLE_API_KEY');
    const baseUrl = read(env, 'GEMINI_BASE_URL');
    if (baseUrl !== undefined && !URL.canParse(baseUrl)) {
      throw configError(
        'GEMINI_BASE_URL',
        `"${baseUrl}" is not an absolute URL, e.g. http://127.0.0.1:4000 (without /v1beta)`,
      );
    }
    const model = choice.model ?? read(env, 'GEMINI_MODEL') ?? DEFAULT_GEMINI_MODEL;
    const { createGeminiExtractor } = await importOptionalPeer(() => import('@ctx/model-gemini'), {
      packageName: '@ctx/model-gemini',
      install: '@ctx/model-gemini @google/genai',
      purpose: 'The Gemini extractor',
    });
    const extractor = createGeminiExtractor({
      ...common,
      model,
      apiKey: apiKey as string,
      ...(baseUrl === undefined ? {} : { baseUrl }),
    });
    const where = baseUrl === undefined ? '' : ` via ${baseUrl}`;
    return { extractor, provider: 'gemini', model, description: `Gemini ${model}${where}` };
  }

  return {
    extractor: createExtractiveExtractor(options.extractive),
    provider: 'extractive',
    model: null,
    description: `extractive (${choice.reason})`,
  };
}
