import type { SessionContextStore } from '@ctx/core';
import { assertIntegrationOptions } from '@ctx/core/adapter';
import { type AgentInputItem, MemorySession, type Session } from '@openai/agents';
import {
  isAssistantMessage,
  type ToSessionMessagesOptions,
  toSessionMessages,
} from './agents-messages.js';

/** Options of {@link createContextSession}. */
export interface ContextSessionOptions extends ToSessionMessagesOptions {
  /** The store that records each turn. */
  store: SessionContextStore;
  /**
   * The ctx session (one conversation): use the same id in the run context, so that the
   * instructions render this session's block.
   * @default the wrapped session's `getSessionId()` (required when `session` is not given)
   */
  sessionId?: string;
  /** The user the session belongs to; another user's session is refused (`OWNERSHIP_MISMATCH`). */
  userId?: string;
  /**
   * The Agents SDK session that keeps the conversation history; every call is passed on to it.
   * @default a new `MemorySession` with `sessionId`
   */
  session?: Session;
}

/**
 * An Agents SDK `Session` that records every turn in the ctx store. It keeps the conversation
 * history in the session it wraps (a `MemorySession` by default) and, when the runner saves a turn
 * that ends with the assistant's message, records that turn — the user's input, the function calls
 * and their results, the reply — with `store.schedule`, which returns once the turn is durably in
 * the turn log; the new snapshot is written in the background, so the reply is not held up by a
 * model call. Items saved without a reply yet (an interrupted run waiting for a tool approval, a
 * streamed run that saved its input first) are kept until the reply comes and recorded with it, so
 * each turn is recorded once.
 *
 * The wrapper offers the plain `Session` methods only, so the runner saves history through
 * `addItems`; optional capabilities of the wrapped session (history transactions, compaction) are
 * not used through it. Invalid options (no store, neither `sessionId` nor `session`) throw
 * `INVALID_CONFIG`.
 *
 * @example
 * ```ts
 * const session = createContextSession({ store, sessionId: 'chat-42', userId: 'alice' });
 * await run(agent, 'Plan a week in Lisbon', { session, context: { sessionId: 'chat-42', userId: 'alice' } });
 * ```
 */
export function createContextSession(options: ContextSessionOptions): Session {
  assertIntegrationOptions(
    'context session',
    options,
    options?.sessionId === undefined && options?.session === undefined
      ? [{ path: 'sessionId', message: 'is required when no session is given to wrap' }]
      : [],
  );
  const { store, userId, maxToolResultChars } = options;
  const inner =
    options.session ??
    new MemorySession(options.sessionId === undefined ? {} : { sessionId: options.sessionId });
  const messageOptions = maxToolResultChars === undefined ? {} : { maxToolResultChars };
  /** Items saved since the last recorded turn. */
  let unrecorded: AgentInputItem[] = [];
  const sessionId = async () => options.sessionId ?? (await inner.getSessionId());

  return {
    getSessionId: sessionId,
    getItems: (limit) => inner.getItems(limit),
    async addItems(items) {
      await inner.addItems(items);
      unrecorded.push(...items);
      if (!isAssistantMessage(unrecorded.at(-1))) return;
      const messages = toSessionMessages(unrecorded, messageOptions);
      await store.schedule({
        sessionId: await sessionId(),
        ...(userId === undefined ? {} : { userId }),
        messages,
      });
      unrecorded = [];
    },
    async popItem() {
      const item = await inner.popItem();
      if (item !== undefined) unrecorded.pop();
      return item;
    },
    async clearSession() {
      await inner.clearSession();
      unrecorded = [];
    },
  };
}
