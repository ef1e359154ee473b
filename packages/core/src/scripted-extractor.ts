import { ExtractionError } from './errors.js';
import type { ContextExtractor, ExtractionRequest, TokenUsage } from './extraction.js';
import type { ToleratedOutput } from './extraction-tolerance.js';
import { type ContextDraft, ContextDraftSchema, toValidationIssues } from './schema.js';

/** A scripted result; `F` types the draft's custom fields. */
export interface ScriptedResult<F extends object | undefined = undefined> {
  draft: ContextDraft<F>;
  usage?: TokenUsage;
  /** Keys a (scripted) model added that the parser dropped: reported as `extraction-tolerated`. */
  tolerated?: ToleratedOutput;
}

/**
 * One scripted reply: a draft, a full result, an error to throw, or a function of the request.
 * `F` types the custom fields of drafts (e.g. `FieldValues<typeof fields>`).
 */
export type ScriptedReply<F extends object | undefined = undefined> =
  | ContextDraft<F>
  | ScriptedResult<F>
  | Error
  | ((
      request: ExtractionRequest,
    ) => ContextDraft<F> | ScriptedResult<F> | Promise<ContextDraft<F> | ScriptedResult<F>>);

/** Options of {@link createScriptedExtractor}. */
export interface ScriptedExtractorOptions<F extends object | undefined = undefined> {
  /** Replies used in order, one per call. When they run out, `fallback` answers. */
  replies?: ScriptedReply<F>[];
  /** Answers when `replies` are used up. @default throws an `EXTRACTION_FAILED` error */
  fallback?: ScriptedReply<F>;
  /** Usage reported with drafts that carry none. @default { inputTokens: 0, outputTokens: 0 } */
  usage?: TokenUsage;
  /** Milliseconds to wait before answering (abort signals are honoured while waiting). @default 0 */
  delayMs?: number;
}

/** A {@link ContextExtractor} test double that also records what it was asked. */
export interface ScriptedExtractor extends ContextExtractor {
  /** Every request received, in order (deep copies). */
  readonly requests: ExtractionRequest[];
}

function isResult<F extends object | undefined>(
  value: ContextDraft<F> | ScriptedResult<F>,
): value is ScriptedResult<F> {
  return typeof value === 'object' && value !== null && 'draft' in value;
}

function abortError(signal: AbortSignal): ExtractionError {
  return new ExtractionError('aborted', 'The extraction was aborted', { cause: signal.reason });
}

/**
 * A deterministic extractor for tests: answers from a script instead of a model, validates what it
 * returns like a real adapter (an invalid scripted draft becomes `schema_mismatch`), honours abort
 * signals, and records every request so a test can assert on what the store sent.
 *
 * @example
 * ```ts
 * const extractor = createScriptedExtractor({
 *   replies: [{ summary: 'User asks PUT vs PATCH for a todo API.' }],
 *   fallback: (request) => ({ summary: `${request.previous?.summary ?? ''} +1` }),
 * });
 * // with custom fields: replies typed by the store's fields schema
 * const typed = createScriptedExtractor<FieldValues<typeof fields>>({
 *   replies: [{ summary: 'Deploying to Fly.io.', fields: { platform: 'fly' } }],
 * });
 * ```
 */
export function createScriptedExtractor<F extends object | undefined = undefined>(
  options: ScriptedExtractorOptions<F> = {},
): ScriptedExtractor {
  const replies = [...(options.replies ?? [])];
  const requests: ExtractionRequest[] = [];
  return {
    requests,
    async extract(request, callOptions) {
      const signal = callOptions?.signal;
      requests.push(structuredClone(request));
      if (signal?.aborted) throw abortError(signal);
      if (options.delayMs) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, options.delayMs);
          signal?.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              reject(abortError(signal));
            },
            { once: true },
          );
        });
      }
      const reply =
        replies.shift() ??
        options.fallback ??
        new ExtractionError('unknown', 'The scripted extractor has no reply left');
      if (reply instanceof Error) throw reply;
      const value = typeof reply === 'function' ? await reply(request) : reply;
      const result = isResult(value) ? value : { draft: value };
      const parsed = ContextDraftSchema.safeParse(result.draft);
      if (!parsed.success) {
        throw new ExtractionError(
          'schema_mismatch',
          `Scripted draft is invalid: ${toValidationIssues(parsed.error)
            .map((issue) => `${issue.path}: ${issue.message}`)
            .join('; ')}`,
          { cause: parsed.error },
        );
      }
      return {
        draft: parsed.data,
        usage: result.usage ?? options.usage ?? { inputTokens: 0, outputTokens: 0 },
        ...(result.tolerated ? { tolerated: result.tolerated } : {}),
      };
    },
  };
}
