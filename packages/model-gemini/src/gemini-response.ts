import { ExtractionError, type ExtractionResult, type TokenUsage } from '@ctx/core';
import { type ExtractionFields, parseExtractionOutput } from '@ctx/core/adapter';
import type { GenerateContentResponse } from '@google/genai';

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

/**
 * Token usage from `usageMetadata`. Thinking tokens (`thoughtsTokenCount`) are billed as output, so
 * they are counted in `outputTokens`.
 */
export function readUsage(response: GenerateContentResponse): TokenUsage | undefined {
  const usage = response.usageMetadata;
  if (!usage) return undefined;
  return {
    inputTokens: usage.promptTokenCount ?? 0,
    outputTokens: (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0),
  };
}

/**
 * Turns a `generateContent` response into an extraction result, or throws an
 * {@link ExtractionError}: a blocked prompt or a safety/recitation stop → `refusal`; `MAX_TOKENS`
 * → `truncated`; no text → `empty`; text that is not valid extraction JSON → `invalid_json` /
 * `schema_mismatch` (from core's parser).
 */
export function readExtractionResponse(
  response: GenerateContentResponse,
  planning: boolean,
  maxOutputTokens: number,
  fields?: ExtractionFields,
): ExtractionResult {
  const blockReason = response.promptFeedback?.blockReason;
  if (blockReason) {
    const detail = response.promptFeedback?.blockReasonMessage;
    throw new ExtractionError(
      'refusal',
      `Gemini blocked the prompt (${blockReason})${detail ? `: ${detail}` : ''}. The conversation or the instructions tripped the provider's content filters.`,
      { retryable: false },
    );
  }
  const candidate = response.candidates?.[0];
  if (!candidate) {
    throw new ExtractionError('empty', 'Gemini returned no candidate');
  }
  const finishReason = candidate.finishReason as string | undefined;
  const finishMessage = candidate.finishMessage ? `: ${candidate.finishMessage}` : '';
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
  const text = (candidate.content?.parts ?? [])
    .filter((part) => part.thought !== true && typeof part.text === 'string')
    .map((part) => part.text)
    .join('');
  const draft = parseExtractionOutput(text, fields ? { planning, fields } : { planning });
  const usage = readUsage(response);
  return usage ? { draft, usage } : { draft };
}
