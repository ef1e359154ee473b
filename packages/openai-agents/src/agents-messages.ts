import type { Message } from '@ctx/core';
import { sliceAtCodePoint, toStorableText } from '@ctx/core/adapter';
import type { AgentInputItem } from '@openai/agents';

/** Options of {@link toSessionMessages}. */
export interface ToSessionMessagesOptions {
  /**
   * Longest tool result kept, in characters; a longer one is cut and marked with `…`. A session
   * context summarises the conversation, so a page of search results does not belong in it whole.
   * @default 2000
   */
  maxToolResultChars?: number;
}

type Fields = Record<string, unknown>;

/** Placeholders for content the extractor cannot read but should know was there. */
const MEDIA_PARTS: Record<string, string> = {
  input_image: '[image]',
  input_file: '[file]',
  input_audio: '[audio]',
  image: '[image]',
  file: '[file]',
};

const isFields = (value: unknown): value is Fields => typeof value === 'object' && value !== null;

function partText(part: unknown): string {
  if (typeof part === 'string') return part;
  if (!isFields(part)) return '';
  const type = typeof part.type === 'string' ? part.type : '';
  if ((type === 'input_text' || type === 'output_text' || type === 'text') && part.text) {
    return String(part.text);
  }
  if (type === 'refusal' && part.refusal) return `[refused] ${String(part.refusal)}`;
  if (type === 'audio' && part.transcript) return String(part.transcript);
  return MEDIA_PARTS[type] ?? '';
}

function contentText(content: unknown): string {
  if (Array.isArray(content)) return content.map(partText).filter(Boolean).join('\n');
  return partText(content);
}

// Cuts long tool output, never between the two halves of a surrogate pair.
function cut(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${sliceAtCodePoint(text, maxChars - 1)}…`;
}

function toMessage(item: Fields, maxToolResultChars: number): Message | null {
  const type = item.type ?? 'message';
  if (type === 'message') {
    if (item.role === 'user') return { role: 'user', content: contentText(item.content) };
    if (item.role === 'assistant') return { role: 'assistant', content: contentText(item.content) };
    // System and developer messages are the agent's own instructions.
    return null;
  }
  if (type === 'function_call') {
    return {
      role: 'assistant',
      content: `Tool call: ${String(item.name)}(${typeof item.arguments === 'string' ? item.arguments : ''})`,
    };
  }
  if (type === 'function_call_result') {
    const output = contentText(item.output);
    const failed = item.status === 'incomplete';
    return {
      role: 'tool',
      content: `Tool ${failed ? 'error' : 'result'} (${String(item.name)}): ${cut(output, maxToolResultChars)}`,
    };
  }
  if (type === 'hosted_tool_call' || type === 'shell_call' || type === 'computer_call') {
    return { role: 'assistant', content: `Tool call: ${String(item.name ?? type)}` };
  }
  // Reasoning, compaction markers, tool-search bookkeeping and unknown items carry no turn.
  return null;
}

/**
 * Agents SDK items as ctx messages: user and assistant `message` items keep their text (images,
 * files and audio become `[image]`, `[file]`, `[audio]`); a `function_call` becomes an assistant
 * `Tool call: name({...arguments})` line and a `function_call_result` a `tool` message
 * `Tool result (name): …`, cut to `maxToolResultChars`. System messages, reasoning and other
 * bookkeeping items are left out.
 *
 * @example
 * ```ts
 * await store.schedule({ sessionId, userId, messages: toSessionMessages(result.history) });
 * ```
 */
export function toSessionMessages(
  items: readonly AgentInputItem[],
  options: ToSessionMessagesOptions = {},
): Message[] {
  const maxToolResultChars = options.maxToolResultChars ?? 2000;
  const messages: Message[] = [];
  for (const item of items) {
    const message = isFields(item) ? toMessage(item, maxToolResultChars) : null;
    // Text every store accepts: no U+0000, no lone surrogate, within the message limit.
    if (message && message.content !== '') {
      messages.push({ ...message, content: toStorableText(message.content) });
    }
  }
  return messages;
}

/** Whether an item is the assistant's final message of a turn (which ends the turn). */
export function isAssistantMessage(item: AgentInputItem | undefined): boolean {
  const fields: unknown = item;
  return (
    isFields(fields) && (fields.type ?? 'message') === 'message' && fields.role === 'assistant'
  );
}
