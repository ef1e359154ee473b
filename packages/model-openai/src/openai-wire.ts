import { EXTRACTION_SCHEMA_NAME, type ExtractionPrompt, type JsonSchema } from '@ctx/core/adapter';
import type { OpenAIReasoningEffort, ResolvedOpenAIOptions } from './openai-options.js';

/** The output format actually sent on one request. */
export type OutputFormat = 'json_schema' | 'json_object';

// The request bodies are typed here, by what the extractor sends, rather than with the SDK's
// parameter types: those differ between `openai` 6 and 7 (and between two installs), while these
// bodies are valid for both.

/** The body of `POST /v1/responses` as the extractor sends it. */
export interface ResponsesRequestBody {
  model: string;
  instructions: string;
  input: { role: 'user'; content: string }[];
  text: {
    format:
      | { type: 'json_schema'; name: string; schema: JsonSchema; strict: true }
      | { type: 'json_object' };
  };
  max_output_tokens: number;
  temperature?: number;
  reasoning?: { effort: OpenAIReasoningEffort };
  store: false;
  stream?: false;
}

/** The body of `POST /v1/chat/completions` as the extractor sends it. */
export interface ChatRequestBody {
  model: string;
  messages: ({ role: 'system'; content: string } | { role: 'user'; content: string })[];
  response_format:
    | { type: 'json_schema'; json_schema: { name: string; schema: JsonSchema; strict: true } }
    | { type: 'json_object' };
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  reasoning_effort?: OpenAIReasoningEffort;
  stream?: false;
}

/**
 * In JSON mode the server does not know the schema, so the system prompt carries it. (JSON mode
 * also requires the word "JSON" in the prompt, which core's prompt already has.)
 */
function systemPrompt(prompt: ExtractionPrompt, format: OutputFormat, schema: JsonSchema): string {
  if (format === 'json_schema') return prompt.system;
  return `${prompt.system}\n\nReply with exactly one JSON object and nothing else (no prose, no code fence). It must match this JSON Schema:\n${JSON.stringify(schema)}`;
}

/** The body of `POST /v1/responses`. */
export function buildResponsesBody(
  options: ResolvedOpenAIOptions,
  prompt: ExtractionPrompt,
  schema: JsonSchema,
  format: OutputFormat,
): ResponsesRequestBody {
  return {
    model: options.model,
    instructions: systemPrompt(prompt, format, schema),
    input: [{ role: 'user', content: prompt.user }],
    text: {
      format:
        format === 'json_schema'
          ? { type: 'json_schema', name: EXTRACTION_SCHEMA_NAME, schema, strict: true }
          : { type: 'json_object' },
    },
    max_output_tokens: options.maxOutputTokens,
    ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
    ...(options.reasoningEffort === undefined
      ? {}
      : { reasoning: { effort: options.reasoningEffort } }),
    // Conversations are the application's data: do not keep them on OpenAI's side.
    store: false,
  };
}

/** The body of `POST /v1/chat/completions`. */
export function buildChatBody(
  options: ResolvedOpenAIOptions,
  prompt: ExtractionPrompt,
  schema: JsonSchema,
  format: OutputFormat,
): ChatRequestBody {
  return {
    model: options.model,
    messages: [
      { role: 'system', content: systemPrompt(prompt, format, schema) },
      { role: 'user', content: prompt.user },
    ],
    response_format:
      format === 'json_schema'
        ? {
            type: 'json_schema',
            json_schema: { name: EXTRACTION_SCHEMA_NAME, schema, strict: true },
          }
        : { type: 'json_object' },
    // Compatible servers read `max_tokens`; OpenAI reasoning models accept only the newer name.
    ...(options.reasoningModel
      ? { max_completion_tokens: options.maxOutputTokens }
      : { max_tokens: options.maxOutputTokens }),
    ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
    ...(options.reasoningEffort === undefined ? {} : { reasoning_effort: options.reasoningEffort }),
  };
}
