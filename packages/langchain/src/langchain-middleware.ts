import type { SessionContextStore } from '@ctx/core';
import { assertIntegrationOptions } from '@ctx/core/adapter';
import { createMiddleware } from 'langchain';
import { z } from 'zod/v4';
import {
  lastTurn,
  type ToSessionMessagesOptions,
  toSessionMessages,
} from './langchain-messages.js';

/** Options of {@link createLangChainMiddleware}. */
export interface LangChainMiddlewareOptions extends ToSessionMessagesOptions {
  /** The store that renders the block before each model call and records each turn. */
  store: SessionContextStore;
  /**
   * Upper bound on the injected block's length, in characters (see `RenderOptions.maxChars` of
   * `@ctx/core`). @default undefined (no limit)
   */
  maxChars?: number;
}

/**
 * What the middleware reads from the agent's runtime context: pass it as
 * `agent.invoke(input, { context: { sessionId, userId } })`. Both are optional: without a session
 * id the middleware falls back to `configurable.thread_id`, and without either it does nothing.
 */
export const sessionContextSchema = z.object({
  /** The ctx session (one conversation). @default `configurable.thread_id` */
  sessionId: z.string().optional(),
  /** The user the session belongs to; another user's session is refused (`OWNERSHIP_MISMATCH`). */
  userId: z.string().optional(),
});

/** The runtime context {@link createLangChainMiddleware} reads. */
export type SessionContextRuntime = z.infer<typeof sessionContextSchema>;

interface RuntimeLike {
  context?: unknown;
  configurable?: { thread_id?: unknown };
}

/** The session and user of one invocation, or null when it names no session. */
function sessionOf(runtime: RuntimeLike): { sessionId: string; userId?: string } | null {
  const context = (runtime.context ?? {}) as SessionContextRuntime;
  const threadId = runtime.configurable?.thread_id;
  const sessionId = context.sessionId ?? (typeof threadId === 'string' ? threadId : undefined);
  if (sessionId === undefined) return null;
  return context.userId === undefined ? { sessionId } : { sessionId, userId: context.userId };
}

/**
 * A LangChain `createAgent` middleware that gives the agent a ctx session context: before every
 * model call it appends the session's `<session_context>` block to the system message, and when
 * the agent run ends it records the turn (the user's message, the tool calls and results, the
 * reply) with `store.schedule`, which returns once the turn is durably in the turn log; the new
 * snapshot is written in the background, so the reply is not held up by a model call.
 *
 * The session comes from the runtime context (`{ sessionId, userId }`, see
 * {@link sessionContextSchema}) or else from `configurable.thread_id`; an invocation with neither
 * passes through untouched. Invalid options throw `INVALID_CONFIG` here; store failures are typed `ContextError`s and reject the invocation;
 * a turn recorded by `schedule` is never lost (a fold that fails is retried, and any instance's
 * next update or `drain` folds it).
 *
 * @example
 * ```ts
 * const agent = createAgent({
 *   model,
 *   tools,
 *   systemPrompt: 'You are a helpful assistant.',
 *   middleware: [createLangChainMiddleware({ store })],
 * });
 * await agent.invoke(
 *   { messages: [{ role: 'user', content: 'Plan my week in Lisbon' }] },
 *   { context: { sessionId: 'chat-42', userId: 'alice' } },
 * );
 * ```
 */
export function createLangChainMiddleware(options: LangChainMiddlewareOptions) {
  assertIntegrationOptions('LangChain middleware', options);
  const { store, maxChars, maxToolResultChars } = options;
  const renderOptions = maxChars === undefined ? {} : { maxChars };
  const messageOptions = maxToolResultChars === undefined ? {} : { maxToolResultChars };
  return createMiddleware({
    name: 'SessionContextMiddleware',
    contextSchema: sessionContextSchema,
    wrapModelCall: async (request, handler) => {
      const session = sessionOf(request.runtime);
      if (!session) return handler(request);
      const { sessionId, ...user } = session;
      const block = await store.render(sessionId, { ...user, ...renderOptions });
      if (!block) return handler(request);
      const separator = request.systemPrompt.trim() === '' ? '' : '\n\n';
      return handler({
        ...request,
        systemMessage: request.systemMessage.concat(`${separator}${block}`),
      });
    },
    afterAgent: async (state, runtime) => {
      const session = sessionOf(runtime);
      if (!session) return;
      const messages = toSessionMessages(lastTurn(state.messages), messageOptions);
      if (messages.length === 0) return;
      await store.schedule({ ...session, messages });
    },
  });
}
