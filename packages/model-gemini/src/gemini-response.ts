import { ExtractionError, type ExtractionResult, type TokenUsage } from '@ctx/core';
import {
  type ExtractionFields,
  isTokenCount,
  parseExtractionOutput,
  type ToleratedOutput,
  toTokenUsage,
} from '@ctx/core/adapter';
import { notTheReplyError } from './gemini-fetch.js';

/** Candidate finish reasons that mean the model (or its filters) declined to produce the output. */
const REFUSAL_FINISH_REASONS: ReadonlySet<string> = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'LANGUAGE',
  'IMAGE_SAFETY',
  'IMAGE_PROHIBITED_CONTENT',
  'IMAGE_RECITATION',
]);

/** Finish reasons after which the output is complete. */
const COMPLETE_FINISH_REASONS: ReadonlySet<string | undefined> = new Set([
  undefined,
  'STOP',
  'FINISH_REASON_UNSPECIFIED',
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value when it is a string, else ''. */
function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * Token usage from `usageMetadata`. Thinking tokens (`thoughtsTokenCount`) are billed as output, so
 * they are counted in `outputTokens`. A missing count is 0 (proto3 JSON leaves zeros out); a count
 * that is not a non-negative integer (`"12"`, `-1`) makes the whole usage unknown: ignored, never
 * coerced or concatenated.
 */
export function readUsage(response: Record<string, unknown>): TokenUsage | undefined {
  const usage = response.usageMetadata;
  if (!isRecord(usage)) return undefined;
  const count = (value: unknown) => (value === undefined ? 0 : value);
  const input = count(usage.promptTokenCount);
  const candidates = count(usage.candidatesTokenCount);
  const thoughts = count(usage.thoughtsTokenCount);
  if (!isTokenCount(candidates) || !isTokenCount(thoughts)) return undefined;
  return toTokenUsage(input, candidates + thoughts);
}

/**
 * Turns a `generateContent` response into an extraction result, or throws an
 * {@link ExtractionError}: a blocked prompt or a safety/recitation stop → `refusal`; `MAX_TOKENS`
 * → `truncated`; no text → `empty`; text that is not valid extraction JSON → `invalid_json` /
 * `schema_mismatch` (from core's parser).
 */
export function readExtractionResponse(
  response: unknown,
  planning: boolean,
  maxOutputTokens: number,
  fields?: ExtractionFields,
): ExtractionResult {
  if (!isRecord(response)) {
    throw notTheReplyError(undefined, 'something that is not a Gemini response object');
  }
  const feedback = isRecord(response.promptFeedback) ? response.promptFeedback : {};
  const blockReason = text(feedback.blockReason);
  if (blockReason) {
    const detail = text(feedback.blockReasonMessage);
    throw new ExtractionError(
      'refusal',
      `Gemini blocked the prompt (${blockReason})${detail ? `: ${detail}` : ''}. The conversation or the instructions tripped the provider's content filters.`,
      { retryable: false },
    );
  }
  const candidates = response.candidates;
  if (candidates !== undefined && candidates !== null && !Array.isArray(candidates)) {
    throw notTheReplyError(
      undefined,
      'JSON that is not a Gemini response ("candidates" is not a list)',
    );
  }
  const candidate: unknown = candidates?.[0];
  if (!isRecord(candidate)) {
    throw new ExtractionError('empty', 'Gemini returned no candidate');
  }
  const finishReason = text(candidate.finishReason) || undefined;
  const finishMessage = text(candidate.finishMessage) ? `: ${text(candidate.finishMessage)}` : '';
  if (finishReason && REFUSAL_FINISH_REASONS.has(finishReason)) {
    throw new ExtractionError(
      'refusal',
      `Gemini stopped the answer (${finishReason})${finishMessage}. The output tripped the provider's content filters.`,
      { retryable: false },
    );
  }
  if (finishReason === 'MAX_TOKENS') {
    throw new ExtractionError(
      'truncated',
      `Gemini stopped at the output token limit (maxOutputTokens ${maxOutputTokens}) before the JSON was complete; raise maxOutputTokens, or lower the thinking budget of thinking models, whose thoughts count against the limit`,
    );
  }
  if (finishReason === 'CONTINUATION') {
    throw new ExtractionError(
      'truncated',
      'Gemini ended the answer at a continuation checkpoint before it was complete',
    );
  }
  if (!COMPLETE_FINISH_REASONS.has(finishReason)) {
    throw new ExtractionError(
      'unknown',
      `Gemini stopped the answer for an unexpected reason (${finishReason})${finishMessage}`,
      { retryable: finishReason === 'OTHER' },
    );
  }
  const parts = isRecord(candidate.content) ? candidate.content.parts : undefined;
  const output = (Array.isArray(parts) ? parts : [])
    .map((part: unknown) => (isRecord(part) && part.thought !== true ? text(part.text) : ''))
    .join('');
  let tolerated: ToleratedOutput | undefined;
  const draft = parseExtractionOutput(output, {
    planning,
    ...(fields ? { fields } : {}),
    onTolerated: (report) => {
      tolerated = report;
    },
  });
  const usage = readUsage(response);
  return { draft, ...(usage ? { usage } : {}), ...(tolerated ? { tolerated } : {}) };
}
