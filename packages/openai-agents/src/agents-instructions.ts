import type { SessionContextStore } from '@ctx/core';
import { assertIntegrationOptions } from '@ctx/core/adapter';
import type { Agent, AgentOutputType, RunContext } from '@openai/agents';

/** The run context fields {@link createContextInstructions} reads by default. */
export interface SessionContextRunContext {
  /** The ctx session (one conversation). Without it the instructions are left as they are. */
  sessionId?: string;
  /** The user the session belongs to; another user's session is refused (`OWNERSHIP_MISMATCH`). */
  userId?: string;
}

/** The session one run belongs to. */
export interface SessionRef {
  sessionId: string;
  userId?: string;
}

/** The SDK's instructions: a string, or a function of the run context and the agent. */
export type AgentInstructions<TContext> =
  | string
  // biome-ignore lint/suspicious/noExplicitAny: the agent's output type does not matter here
  | ((runContext: RunContext<TContext>, agent: Agent<TContext, any>) => string | Promise<string>);

/** Options of {@link createContextInstructions}. */
export interface ContextInstructionsOptions<TContext> {
  /** The store whose block is appended. */
  store: SessionContextStore;
  /** The agent's own instructions, which come first. @default '' */
  instructions?: AgentInstructions<TContext>;
  /**
   * Which session a run belongs to, from its run context; `null` or `undefined` for none.
   * @default reads `sessionId` and `userId` of the run context (see {@link SessionContextRunContext})
   */
  session?: (runContext: RunContext<TContext>) => SessionRef | null | undefined;
  /**
   * Upper bound on the block's length, in characters (see `RenderOptions.maxChars` of
   * `@ctx/core`). @default undefined (no limit)
   */
  maxChars?: number;
}

function sessionFromContext(runContext: RunContext<unknown>): SessionRef | null {
  const context = runContext.context;
  if (typeof context !== 'object' || context === null) return null;
  const { sessionId, userId } = context as Record<string, unknown>;
  if (typeof sessionId !== 'string') return null;
  return typeof userId === 'string' ? { sessionId, userId } : { sessionId };
}

/**
 * An `instructions` function for an Agents SDK `Agent`: the agent's own instructions followed by
 * the session's `<session_context>` block. The SDK calls it before every model call, so each call
 * of a tool loop gets the current block. A run whose context names no session gets the agent's
 * instructions unchanged; a session of another user is refused with `OWNERSHIP_MISMATCH`. Invalid
 * options throw `INVALID_CONFIG` here.
 *
 * Pair it with {@link createContextSession}, which records the turns.
 *
 * @example
 * ```ts
 * const agent = new Agent<SessionContextRunContext>({
 *   name: 'Planner',
 *   instructions: createContextInstructions({ store, instructions: 'You plan trips.' }),
 * });
 * ```
 */
export function createContextInstructions<TContext = SessionContextRunContext>(
  options: ContextInstructionsOptions<TContext>,
): <TOutput extends AgentOutputType>(
  runContext: RunContext<TContext>,
  agent: Agent<TContext, TOutput>,
) => Promise<string> {
  assertIntegrationOptions('context instructions', options);
  const { store, instructions = '', maxChars } = options;
  const resolve =
    options.session ?? (sessionFromContext as (runContext: RunContext<TContext>) => SessionRef);
  return async (runContext, agent) => {
    const base =
      typeof instructions === 'string' ? instructions : await instructions(runContext, agent);
    const session = resolve(runContext);
    if (!session) return base;
    const { sessionId, userId } = session;
    return store.buildSystemPrompt(sessionId, base, {
      ...(userId === undefined ? {} : { userId }),
      ...(maxChars === undefined ? {} : { maxChars }),
    });
  };
}
