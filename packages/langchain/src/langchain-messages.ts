import type { Message } from '@ctx/core';
import { sliceAtCodePoint, toStorableText } from '@ctx/core/adapter';
import { AIMessage, type BaseMessage, ToolMessage } from '@langchain/core/messages';

/** Options of {@link toSessionMessages}. */
export interface ToSessionMessagesOptions {
  /**
   * Longest tool result kept, in characters; a longer one is cut and marked with `…`. A session
   * context summarises the conversation, so a page of search results does not belong in it whole.
   * @default 2000
   */
  maxToolResultChars?: number;
}

/** Placeholders for content the extractor cannot read but should know was there. */
const MEDIA_BLOCKS: Record<string, string> = {
  image: '[image]',
  image_url: '[image]',
  file: '[file]',
  audio: '[audio]',
  video: '[video]',
  input_audio: '[audio]',
};

function contentText(content: BaseMessage['content']): string {
  if (typeof content === 'string') return content;
  const parts: string[] = [];
  for (const block of content) {
    if (typeof block === 'string') {
      parts.push(block);
    } else if (block.type === 'text' && typeof block.text === 'string') {
      parts.push(block.text);
    } else if (typeof block.type === 'string' && block.type in MEDIA_BLOCKS) {
      parts.push(MEDIA_BLOCKS[block.type] as string);
    }
    // Reasoning, provider tool-use blocks and the like are skipped: tool calls are taken from
    // `tool_calls`, and reasoning is not part of the conversation.
  }
  return parts.join('\n');
}

// Cuts long tool output, never between the two halves of a surrogate pair.
function cut(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${sliceAtCodePoint(text, maxChars - 1)}…`;
}

function toMessage(message: BaseMessage, maxToolResultChars: number): Message | null {
  switch (message.type) {
    case 'human':
      return { role: 'user', content: contentText(message.content) };
    case 'ai': {
      const lines = [contentText(message.content)];
      if (AIMessage.isInstance(message)) {
        for (const call of message.tool_calls ?? []) {
          lines.push(`Tool call: ${call.name}(${JSON.stringify(call.args)})`);
        }
      }
      return { role: 'assistant', content: lines.filter((line) => line !== '').join('\n') };
    }
    case 'tool': {
      const name = ToolMessage.isInstance(message) ? message.name : undefined;
      const failed = ToolMessage.isInstance(message) && message.status === 'error';
      const label = `Tool ${failed ? 'error' : 'result'}${name ? ` (${name})` : ''}`;
      return {
        role: 'tool',
        content: `${label}: ${cut(contentText(message.content), maxToolResultChars)}`,
      };
    }
    default:
      // System messages hold the agent's own instructions (and the rendered block itself);
      // other kinds (remove markers, generic chat messages) carry no conversation turn.
      return null;
  }
}

/**
 * LangChain messages as ctx messages: human → `user`, AI → `assistant` (its text plus one
 * `Tool call: name({...args})` line per tool call), tool → `tool` (`Tool result (name): …`, cut to
 * `maxToolResultChars`). Text content blocks are joined; images, files, audio and video become
 * `[image]`, `[file]`, … placeholders; system messages are left out.
 *
 * @example
 * ```ts
 * await store.schedule({ sessionId, userId, messages: toSessionMessages(result.messages.slice(-2)) });
 * ```
 */
export function toSessionMessages(
  messages: readonly BaseMessage[],
  options: ToSessionMessagesOptions = {},
): Message[] {
  const maxToolResultChars = options.maxToolResultChars ?? 2000;
  const result: Message[] = [];
  for (const message of messages) {
    const converted = toMessage(message, maxToolResultChars);
    // Text every store accepts: no U+0000, no lone surrogate, within the message limit.
    if (converted) result.push({ ...converted, content: toStorableText(converted.content) });
  }
  return result;
}

/**
 * The messages of the agent run that just ended: the last run of human messages in the state and
 * everything after it (the model's tool calls, the tool results, the final reply). Without a
 * checkpointer the caller passes the whole history on every call, and with one the state keeps it,
 * so the turn is found by position, not by what this invocation passed in.
 */
export function lastTurn(messages: readonly BaseMessage[]): BaseMessage[] {
  let start = messages.length - 1;
  while (start >= 0 && messages[start]?.type !== 'human') start -= 1;
  if (start < 0) return [...messages];
  while (start > 0 && messages[start - 1]?.type === 'human') start -= 1;
  return messages.slice(start);
}
