import { ExtractionError, type TokenUsage } from '@ctx/core';
import { EXTRACTION_SCHEMA_NAME, type ExtractionPrompt, type JsonSchema } from '@ctx/core/adapter';
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
} from 'openai/resources/chat/completions';
import type {
  Response,
  ResponseCreateParamsNonStreaming,
} from 'openai/resources/responses/responses';
import type { ResolvedOpenAIOptions } from './openai-options.js';

/** The output format actually sent on one request. */
export type OutputFormat = 'json_schema' | 'json_object';

/** The model's text and token usage, read from a successful reply. */
export interface ModelReply {
  text: string;
  usage: TokenUsage | undefined;
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
): ResponseCreateParamsNonStreaming {
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
): ChatCompletionCreateParamsNonStreaming {
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

function quote(text: string): string {
  const single = text.replace(/\s+/g, ' ').trim();
  return single.length > 300 ? `${single.slice(0, 300)}…` : single;
}

/** Reads a Responses API reply: refusals, incomplete and failed responses become errors. */
export function readResponsesReply(response: Response): ModelReply {
  if (response.status === 'failed') {
    const code = response.error?.code;
    const message = response.error?.message ?? 'no details';
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
  const contents = (response.output ?? []).flatMap((item) =>
    item.type === 'message' ? item.content : [],
  );
  const refusal = contents.find((content) => content.type === 'refusal');
  if (refusal) {
    throw new ExtractionError(
      'refusal',
      `The model refused to update the context: ${quote(refusal.refusal)}`,
    );
  }
  const text = contents
    .map((content) => (content.type === 'output_text' ? content.text : ''))
    .join('');
  if (response.status === 'incomplete') {
    const why = response.incomplete_details?.reason;
    throw new ExtractionError(
      'truncated',
      why === 'content_filter'
        ? 'The output was stopped by the content filter'
        : `The output was cut off (${why ?? 'incomplete'}); raise maxOutputTokens`,
    );
  }
  const usage = response.usage
    ? { inputTokens: response.usage.input_tokens, outputTokens: response.usage.output_tokens }
    : undefined;
  return { text, usage };
}

/** Reads a Chat Completions reply: refusals and cut-off output become errors. */
export function readChatReply(completion: ChatCompletion): ModelReply {
  const choice = completion.choices?.[0];
  if (!choice) throw new ExtractionError('empty', 'The server returned no choices');
  const refusal = choice.message?.refusal;
  if (refusal) {
    throw new ExtractionError(
      'refusal',
      `The model refused to update the context: ${quote(refusal)}`,
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
  const usage = completion.usage
    ? {
        inputTokens: completion.usage.prompt_tokens,
        outputTokens: completion.usage.completion_tokens,
      }
    : undefined;
  return { text: choice.message?.content ?? '', usage };
}
