import type { AnyModelMessage } from './session-messages.js';

// What a model call answered, as AI SDK messages that `toSessionMessages` renders: the content of
// a `doGenerate` result, or the parts of a `doStream` stream. Only the fields read here are typed,
// so that the content of AI SDK 6 (LanguageModelV3) and 7 (LanguageModelV4) both fit.

type UnknownRecord = Record<string, unknown>;

const isRecord = (value: unknown): value is UnknownRecord =>
  typeof value === 'object' && value !== null;

/**
 * One content part of a reply as a message part: text, tool calls and files are kept; a tool the
 * provider ran (web search…) becomes a tool-result part of the assistant message.
 */
function toMessagePart(part: unknown): unknown {
  if (!isRecord(part)) return undefined;
  switch (part.type) {
    case 'text':
    case 'tool-call':
    case 'file':
      return part;
    case 'tool-result':
      return {
        type: 'tool-result',
        toolName: part.toolName,
        output:
          part.isError === true
            ? { type: 'error-json', value: part.result }
            : { type: 'json', value: part.result },
      };
    case 'tool-approval-request':
      return part;
    default:
      return undefined;
  }
}

/** The assistant message of a `doGenerate` result (none when it has no content). */
export function replyFromContent(content: readonly unknown[]): AnyModelMessage[] {
  const parts = content.map(toMessagePart).filter((part) => part !== undefined);
  return parts.length > 0 ? [{ role: 'assistant', content: parts }] : [];
}

/** How a stream ended, as far as recording the turn is concerned. */
export type StreamOutcome = 'finished' | 'interrupted' | 'failed';

/**
 * Collects the parts of a `doStream` stream into the assistant message the user saw: text blocks
 * (in the order they started), completed tool calls, provider-run tool results and files.
 * Reasoning and partial tool inputs are left out.
 */
export class StreamReply {
  readonly #parts: unknown[] = [];
  readonly #texts = new Map<string, { type: 'text'; text: string }>();
  #finished = false;
  #failed = false;
  #finishReason: string | undefined;

  /** Looks at one stream part. */
  add(part: unknown): void {
    if (!isRecord(part)) return;
    switch (part.type) {
      case 'text-start':
        this.#text(String(part.id));
        return;
      case 'text-delta':
        this.#text(String(part.id)).text += typeof part.delta === 'string' ? part.delta : '';
        return;
      case 'tool-call':
      case 'tool-result':
      case 'file':
      case 'tool-approval-request': {
        const messagePart = toMessagePart(part);
        if (messagePart !== undefined) this.#parts.push(messagePart);
        return;
      }
      case 'error':
        this.#failed = true;
        return;
      case 'finish': {
        const reason = unifiedFinishReason(part);
        this.#finishReason = reason;
        if (reason === 'error') this.#failed = true;
        else this.#finished = true;
        return;
      }
      default:
        return;
    }
  }

  /** The unified finish reason of the `finish` part (`stop`, `tool-calls`, …), if one came. */
  get finishReason(): string | undefined {
    return this.#finishReason;
  }

  /**
   * `finished` after a `finish` part and no error; `failed` when the stream reported an error;
   * `interrupted` when it ended early (aborted, cancelled) without one.
   */
  get outcome(): StreamOutcome {
    if (this.#failed) return 'failed';
    return this.#finished ? 'finished' : 'interrupted';
  }

  /**
   * The assistant message so far (none when nothing was received). An interrupted reply ends with
   * the line `[reply interrupted]`, so the summary does not take a partial answer for a full one.
   */
  messages(): AnyModelMessage[] {
    const parts = this.#parts.filter(
      (part) => !(isRecord(part) && part.type === 'text' && String(part.text).trim() === ''),
    );
    if (parts.length === 0) return [];
    if (this.outcome === 'interrupted') parts.push({ type: 'text', text: '[reply interrupted]' });
    return [{ role: 'assistant', content: parts }];
  }

  #text(id: string): { type: 'text'; text: string } {
    let block = this.#texts.get(id);
    if (!block) {
      block = { type: 'text', text: '' };
      this.#texts.set(id, block);
      this.#parts.push(block);
    }
    return block;
  }
}

/**
 * Passes `stream` through unchanged while `reply` looks at every part, and calls `onEnd` once when
 * the stream ends: normally, with an error, or because its reader cancelled it. An error counts
 * as an interruption when `signal` was aborted (or the error is an `AbortError`), as a failure
 * otherwise.
 */
export function observeStream<Part>(
  stream: ReadableStream<Part>,
  reply: StreamReply,
  onEnd: (outcome: StreamOutcome) => void,
  signal?: AbortSignal,
): ReadableStream<Part> {
  const reader = stream.getReader();
  let ended = false;
  const end = (outcome: StreamOutcome) => {
    if (ended) return;
    ended = true;
    onEnd(outcome);
  };
  return new ReadableStream<Part>({
    async pull(controller) {
      let next: Awaited<ReturnType<typeof reader.read>>;
      try {
        next = await reader.read();
      } catch (error) {
        // The provider's stream broke off: aborted by the caller's signal, or a network error.
        const aborted = signal?.aborted === true || isAbort(error);
        end(reply.outcome !== 'failed' && aborted ? 'interrupted' : 'failed');
        throw error;
      }
      if (next.done) {
        end(reply.outcome);
        controller.close();
        return;
      }
      reply.add(next.value);
      controller.enqueue(next.value);
    },
    async cancel(reason) {
      end(reply.outcome === 'finished' ? 'finished' : 'interrupted');
      await reader.cancel(reason);
    },
  });
}

/**
 * The unified finish reason of a generate result or a stream's `finish` part: an object
 * `{ unified, raw }` since the v3 specification, a plain string before.
 */
export function unifiedFinishReason(result: unknown): string | undefined {
  if (!isRecord(result)) return undefined;
  const reason = isRecord(result.finishReason) ? result.finishReason.unified : result.finishReason;
  return typeof reason === 'string' ? reason : undefined;
}

function isAbort(error: unknown): boolean {
  return isRecord(error) && (error.name === 'AbortError' || error.name === 'TimeoutError');
}
