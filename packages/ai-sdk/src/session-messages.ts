import { type Message, ValidationError } from '@ctx/core';
import { cutText as cut, toStorableText as storable } from '@ctx/core/adapter';
import type { ModelMessage } from 'ai';

/** Options of {@link toSessionMessages}. */
export interface ToSessionMessagesOptions {
  /**
   * Characters kept of one tool call's input and of one tool result's output; longer ones are cut
   * and marked with `… [N more characters]`. Tool outputs (search results, file contents) are often
   * long and mostly noise for a summary, and every character is sent to the extractor. At least 0.
   * @default 2000
   */
  maxToolChars?: number;
}

/** The default of {@link ToSessionMessagesOptions.maxToolChars}. */
export const DEFAULT_MAX_TOOL_CHARS = 2_000;

// The shapes below are what this file reads of the AI SDK's messages. They are wider than
// `ModelMessage` on purpose: the middleware also hands in the provider-level prompt of AI SDK 6
// (LanguageModelV3) and 7 (LanguageModelV4), whose parts differ in details (file `data` is a URL,
// bytes, base64, or in V4 a tagged object; tool inputs are objects or JSON strings).
type UnknownRecord = Record<string, unknown>;

/** A message of the AI SDK (`ModelMessage`, or a message of a model call's prompt). */
export interface AnyModelMessage {
  role: string;
  content: unknown;
}

const isRecord = (value: unknown): value is UnknownRecord =>
  typeof value === 'object' && value !== null;

function json(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function urlOf(data: unknown): string | undefined {
  if (data instanceof URL) return data.href;
  if (typeof data === 'string' && /^https?:\/\//i.test(data)) return data;
  // AI SDK 7 tags file data: { type: 'url', url }.
  if (isRecord(data) && data.type === 'url') return urlOf(data.url);
  return undefined;
}

/** `[image: image/png https://…]`, `[file: report.pdf, application/pdf]` — never the bytes. */
function describeFile(part: UnknownRecord): string {
  const mediaType = typeof part.mediaType === 'string' ? part.mediaType : undefined;
  const image = part.type === 'image' || mediaType?.startsWith('image/') === true;
  const filename = typeof part.filename === 'string' ? part.filename : undefined;
  const url = urlOf(part.type === 'image' ? part.image : (part.data ?? part.url));
  const details = [filename, mediaType, url].filter(Boolean).join(', ');
  return `[${image ? 'image' : 'file'}${details ? `: ${details}` : ''}]`;
}

function describeToolOutput(output: unknown, limit: number): string {
  if (!isRecord(output)) return cut(json(output), limit);
  switch (output.type) {
    case 'text':
      return cut(String(output.value), limit);
    case 'json':
      return cut(json(output.value), limit);
    case 'error-text':
      return `error: ${cut(String(output.value), limit)}`;
    case 'error-json':
      return `error: ${cut(json(output.value), limit)}`;
    case 'execution-denied':
      return `denied${typeof output.reason === 'string' ? `: ${output.reason}` : ''}`;
    case 'content': {
      const parts = Array.isArray(output.value) ? output.value : [];
      const text = parts
        .map((part) =>
          isRecord(part) && part.type === 'text' ? String(part.text) : describeContentPart(part),
        )
        .join('\n');
      return cut(text, limit);
    }
    default:
      return cut(json(output), limit);
  }
}

// A part of a tool result's `content` output that is not text: a file, an image, a reference.
function describeContentPart(part: unknown): string {
  if (!isRecord(part)) return '';
  const type = String(part.type);
  const mediaType = typeof part.mediaType === 'string' ? part.mediaType : undefined;
  const image = type.startsWith('image') || mediaType?.startsWith('image/') === true;
  const url = typeof part.url === 'string' ? part.url : urlOf(part.data);
  const details = [mediaType, url].filter(Boolean).join(', ');
  return `[${image ? 'image' : type === 'custom' ? 'content' : 'file'}${details ? `: ${details}` : ''}]`;
}

/** One part as text, or `undefined` when it is left out (reasoning, sources, unknown parts). */
function describePart(part: unknown, limit: number): string | undefined {
  if (typeof part === 'string') return part;
  if (!isRecord(part)) return undefined;
  switch (part.type) {
    case 'text':
      return typeof part.text === 'string' ? part.text : undefined;
    case 'image':
    case 'file':
      return describeFile(part);
    case 'tool-call':
      return `[tool call ${String(part.toolName)}: ${cut(json(part.input), limit)}]`;
    case 'tool-result':
      return `[tool result ${String(part.toolName)}: ${describeToolOutput(part.output, limit)}]`;
    case 'tool-approval-request':
      return `[tool approval requested for call ${String(part.toolCallId)}]`;
    case 'tool-approval-response':
      return `[tool approval ${part.approved === true ? 'granted' : 'denied'}${
        typeof part.reason === 'string' && part.reason ? `: ${part.reason}` : ''
      }]`;
    default:
      // Reasoning is the model's scratch work, not the conversation; sources, custom and future
      // part types carry nothing a summary can use.
      return undefined;
  }
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

/**
 * Converts AI SDK messages — `ModelMessage`s such as the messages of a `generateText` result
 * (`result.response.messages` in AI SDK 6, `result.responseMessages` in 7), or a prompt's — into ctx messages (`{ role, content: string }`) for `store.update` or
 * `store.schedule`.
 *
 * Each message keeps its role; its parts become lines of text, in order:
 *
 * | part | rendered as |
 * |---|---|
 * | text | the text |
 * | image | `[image: image/png, https://…]` (media type and URL when known; never the bytes) |
 * | file | `[file: report.pdf, application/pdf, https://…]` |
 * | tool call | `[tool call getWeather: {"city":"Paris"}]` |
 * | tool result | `[tool result getWeather: {"temperature":21}]`; errors as `error: …`, a denied call as `denied: reason` |
 * | tool approval | `[tool approval requested for call …]`, `[tool approval granted]` / `[tool approval denied: reason]` |
 * | reasoning, sources, other parts | left out |
 *
 * Tool inputs and outputs are cut after `maxToolChars` characters. Messages with nothing left
 * (an assistant message with only reasoning) are dropped. Text is made storable: U+0000 and lone
 * surrogates become U+FFFD, and a message longer than a ctx message may be (1,000,000 characters)
 * is cut — a message is never refused.
 *
 * @example
 * ```ts
 * const result = await generateText({ model, messages: [...history, question] });
 * await store.schedule({
 *   sessionId,
 *   messages: toSessionMessages([question, ...result.response.messages]),
 * });
 * ```
 */
export function toSessionMessages(
  messages: readonly ModelMessage[] | readonly AnyModelMessage[],
  options: ToSessionMessagesOptions = {},
): Message[] {
  const limit = options.maxToolChars ?? DEFAULT_MAX_TOOL_CHARS;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new ValidationError(
      'INVALID_INPUT',
      'Invalid toSessionMessages options: maxToolChars must be an integer of at least 0',
      { issues: [{ path: 'maxToolChars', message: 'must be an integer ≥ 0' }] },
    );
  }
  const result: Message[] = [];
  for (const message of messages as readonly AnyModelMessage[]) {
    if (!isRecord(message) || !ROLES.has(String(message.role))) continue;
    const parts = Array.isArray(message.content) ? message.content : [message.content];
    const lines = parts
      .map((part) => describePart(part, limit))
      .filter((line): line is string => line !== undefined && line.trim() !== '');
    if (lines.length === 0) continue;
    result.push({ role: message.role as Message['role'], content: storable(lines.join('\n')) });
  }
  return result;
}
