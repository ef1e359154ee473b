import {
  ContextError,
  LIMITS,
  type Message,
  type SessionContextStore,
  ValidationError,
} from '@ctx/core';
import type { LanguageModelMiddleware } from 'ai';
import { observeStream, replyFromContent, StreamReply, unifiedFinishReason } from './reply.js';
import {
  type AnyModelMessage,
  type ToSessionMessagesOptions,
  toSessionMessages,
} from './session-messages.js';

// The call options a middleware sees (LanguageModelV3CallOptions in AI SDK 6), taken from the
// middleware type so that this package needs no direct dependency on @ai-sdk/provider.
type CallOptions = Parameters<NonNullable<LanguageModelMiddleware['transformParams']>>[0]['params'];
type Prompt = CallOptions['prompt'];

/** The key of `providerOptions` the middleware reads. */
export const PROVIDER_OPTIONS_KEY = 'ctx';

/**
 * What a call passes in `providerOptions.ctx`:
 *
 * ```ts
 * await generateText({ model, prompt, providerOptions: { ctx: { sessionId, userId } } });
 * ```
 */
export interface SessionContextProviderOptions {
  /** The conversation. Without it (or without `ctx`), the call passes through untouched. */
  sessionId?: string | null;
  /** The user making the call: owns a new session; must own an existing one. */
  userId?: string | null;
}

/** What the middleware needs of a {@link SessionContextStore}. */
export type SessionContextMiddlewareStore = Pick<
  SessionContextStore,
  'buildSystemPrompt' | 'schedule' | 'flush'
>;

/** Where a failure reported to {@link SessionContextMiddlewareOptions.onError} happened. */
export interface SessionContextMiddlewareErrorInfo {
  sessionId: string;
  /**
   * `render`: reading the session context before the call failed; the call went on without the
   * block. `record`: recording the turn after the call failed; the reply was not affected.
   */
  phase: 'render' | 'record';
}

/** Options of {@link createSessionContextMiddleware}. */
export interface SessionContextMiddlewareOptions extends ToSessionMessagesOptions {
  /** The store that renders the block and records the turns. */
  store: SessionContextMiddlewareStore;
  /**
   * Called with failures that do not fail the call: the turn could not be recorded (storage
   * outage, a full turn log — `BACKPRESSURE`), or the context could not be read (the call then
   * goes on without the block). An ownership mismatch, an invalid session id or a closed store
   * are not reported here: they fail the call.
   * @default writes one line with `console.warn`
   */
  onError?: (error: ContextError, info: SessionContextMiddlewareErrorInfo) => void;
  /**
   * Hands each pending recording to the host so it outlives the response — on serverless
   * platforms, pass their `waitUntil` (for example `waitUntil` of `@vercel/functions`).
   * Elsewhere, call `flush()` before the process exits.
   */
  waitUntil?: (promise: Promise<unknown>) => void;
  /**
   * How long the fold of a turn that ended in tool calls waits for the tool loop's next step
   * (`schedule`'s `foldDelayMs`), so that the steps of one loop share one extraction: the final
   * step, which ends with an answer, folds them all at once. A loop that stops at a tool call (a
   * step limit, tools the client runs) is folded when the delay is up, or by the session's next
   * turn. 0 folds every step on its own. At most one hour.
   * @default 30000
   */
  toolCallFoldDelayMs?: number;
}

/** The default of {@link SessionContextMiddlewareOptions.toolCallFoldDelayMs}. */
export const DEFAULT_TOOL_CALL_FOLD_DELAY_MS = 30_000;

/** The middleware, plus a way to wait for the turns it is recording. */
export type SessionContextMiddleware = LanguageModelMiddleware & {
  /**
   * Resolves when every turn this middleware started recording is recorded (or its failure was
   * reported) and the store's background folds have finished. Call it before the process exits,
   * or in a test before reading the session context.
   */
  flush(): Promise<void>;
};

/** A call that belongs to a session: who, and the messages it adds to the conversation. */
interface SessionCall {
  sessionId: string;
  userId: string | undefined;
  /** The user and tool messages of the prompt since its last assistant message. */
  incoming: AnyModelMessage[];
}

// A rendered block: the tags alone on their lines (a prompt that merely mentions the tag in prose,
// as instructions about the block do, does not count).
const RENDERED_BLOCK = /(^|\n)<session_context>\n[\s\S]*\n<\/session_context>(\n|$)/;
const OPTION_KEYS = new Set(['sessionId', 'userId']);

function invalidOptions(message: string, path: string): ValidationError {
  return new ValidationError('INVALID_INPUT', `Invalid providerOptions.ctx: ${message}`, {
    issues: [{ path: `providerOptions.ctx.${path}`, message }],
  });
}

/** The session of a call, or `undefined` when it has none. Throws on malformed options. */
function readSessionOptions(
  providerOptions: CallOptions['providerOptions'],
): { sessionId: string; userId: string | undefined } | undefined {
  const options: unknown = providerOptions?.[PROVIDER_OPTIONS_KEY];
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalidOptions('must be an object { sessionId, userId }', '');
  }
  for (const key of Object.keys(options)) {
    // A misspelt key (sessionID) would otherwise turn the middleware off without a word.
    if (!OPTION_KEYS.has(key)) throw invalidOptions(`unknown key "${key}"`, key);
  }
  const { sessionId, userId } = options as Record<string, unknown>;
  if (sessionId === undefined || sessionId === null) return undefined;
  if (typeof sessionId !== 'string')
    throw invalidOptions('sessionId must be a string', 'sessionId');
  if (userId !== undefined && userId !== null && typeof userId !== 'string') {
    throw invalidOptions('userId must be a string', 'userId');
  }
  return { sessionId, userId: userId ?? undefined };
}

function withoutSessionOptions(
  providerOptions: CallOptions['providerOptions'],
): CallOptions['providerOptions'] {
  if (!providerOptions) return providerOptions;
  const { [PROVIDER_OPTIONS_KEY]: _removed, ...rest } = providerOptions;
  return Object.keys(rest).length > 0 ? rest : undefined;
}

/** The user and tool messages after the prompt's last assistant message. */
function incomingMessages(prompt: Prompt): AnyModelMessage[] {
  let start = 0;
  prompt.forEach((message, index) => {
    if (message.role === 'assistant') start = index + 1;
  });
  return prompt
    .slice(start)
    .filter((message) => message.role === 'user' || message.role === 'tool');
}

// Failures that must fail the call rather than be worked around: they are the caller's mistakes
// (or another user's session), and going on would hide them.
const FATAL_RENDER_CODES = new Set(['INVALID_INPUT', 'OWNERSHIP_MISMATCH', 'CLOSED']);

function asContextError(error: unknown): ContextError {
  if (ContextError.isInstance(error)) return error;
  return new ContextError('STORAGE_ERROR', error instanceof Error ? error.message : String(error), {
    cause: error,
  });
}

function warn(error: ContextError, info: SessionContextMiddlewareErrorInfo) {
  console.warn(
    info.phase === 'render'
      ? `[ctx] could not read the session context of "${info.sessionId}" (${error.code}): ${error.message}; the call went on without it`
      : `[ctx] could not record a turn of session "${info.sessionId}" (${error.code}): ${error.message}`,
  );
}

/**
 * A language model middleware for the Vercel AI SDK (`wrapLanguageModel`) that gives every call
 * with `providerOptions.ctx.sessionId` its session context:
 *
 * - **Before the call** the session's `<session_context>` block is appended to the system prompt
 *   (the first system message, or a new one at the start when there is none; nothing is added
 *   while the session has no context yet, nor when a system message already holds a block).
 *   The `ctx` key is removed from `providerOptions`, so the provider never sees it.
 * - **After the call** the turn is recorded with `store.schedule` — without delaying the reply:
 *   the user and tool messages of the prompt since its last assistant message, plus the reply,
 *   converted with {@link toSessionMessages}. The store folds it into the session context in the
 *   background. A `generateText` call records when the model has answered; a `streamText` call
 *   when the stream has finished.
 * - **Tool calls**: every model call is one turn. A call that ends in tool calls records the
 *   user's message and the calls; the next step (the tool results and what the model made of
 *   them) records the results and the answer. No message is recorded twice. The fold of a step
 *   that ended in tool calls waits for the next step (`toolCallFoldDelayMs`), so one loop costs
 *   one extraction.
 * - **Aborted streams** record what the user saw: the new messages and the partial reply, ending
 *   with `[reply interrupted]`; nothing when no reply had arrived. Failed calls and streams that
 *   reported an error record nothing (a retry records the turn).
 * - **No session id**: the call passes through untouched and nothing is recorded.
 *
 * A failed recording never fails the call: it is reported to `onError`. The store's own events
 * (`config.onEvent`) report the background folds. Call `flush()` before the process exits.
 *
 * @example
 * ```ts
 * import { createSessionContextMiddleware } from '@ctx/ai-sdk';
 * import { generateText, wrapLanguageModel } from 'ai';
 *
 * const model = wrapLanguageModel({
 *   model: openai('gpt-4.1-mini'),
 *   middleware: createSessionContextMiddleware({ store }),
 * });
 * const { text } = await generateText({
 *   model,
 *   system: 'You are a helpful assistant.',
 *   prompt: 'Where were we?',
 *   providerOptions: { ctx: { sessionId: 'trip-42', userId: 'alice' } },
 * });
 * ```
 */
export function createSessionContextMiddleware(
  options: SessionContextMiddlewareOptions,
): SessionContextMiddleware {
  const {
    store,
    onError = warn,
    waitUntil,
    toolCallFoldDelayMs = DEFAULT_TOOL_CALL_FOLD_DELAY_MS,
  } = options ?? {};
  const issues = [];
  for (const method of ['buildSystemPrompt', 'schedule', 'flush'] as const) {
    if (typeof store?.[method] !== 'function') {
      issues.push({ path: `store.${method}`, message: 'must be a function' });
    }
  }
  if (onError !== undefined && typeof onError !== 'function') {
    issues.push({ path: 'onError', message: 'must be a function' });
  }
  if (waitUntil !== undefined && typeof waitUntil !== 'function') {
    issues.push({ path: 'waitUntil', message: 'must be a function' });
  }
  if (
    !Number.isInteger(toolCallFoldDelayMs) ||
    toolCallFoldDelayMs < 0 ||
    toolCallFoldDelayMs > 3_600_000
  ) {
    issues.push({
      path: 'toolCallFoldDelayMs',
      message: 'must be an integer of milliseconds from 0 to 3600000',
    });
  }
  if (issues.length > 0) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Invalid session context middleware options: ${issues.map((issue) => `${issue.path} ${issue.message}`).join('; ')}`,
      { issues },
    );
  }
  const messageOptions: ToSessionMessagesOptions =
    options.maxToolChars === undefined ? {} : { maxToolChars: options.maxToolChars };
  // Validates maxToolChars now rather than at the first call.
  toSessionMessages([], messageOptions);

  const calls = new WeakMap<CallOptions, SessionCall>();
  const pending = new Set<Promise<void>>();
  // Recordings of one session run one after another, so its turns reach the log in the order the
  // calls finished (a slow write cannot let a later turn overtake an earlier one).
  const queues = new Map<string, Promise<void>>();

  const report = (error: unknown, info: SessionContextMiddlewareErrorInfo) => {
    try {
      onError(asContextError(error), info);
    } catch (handlerError) {
      console.error(
        '[ctx] the onError handler of the session context middleware threw:',
        handlerError,
      );
    }
  };

  // A call that ended in tool calls is one step of a loop: its fold waits for the next step.
  const record = (call: SessionCall, reply: AnyModelMessage[], endedInToolCalls: boolean) => {
    const messages = toSessionMessages([...call.incoming, ...reply], messageOptions);
    if (messages.length === 0) return;
    const { sessionId, userId } = call;
    const previous = queues.get(sessionId) ?? Promise.resolve();
    const task = previous.then(async () => {
      try {
        for (const batch of batches(messages)) {
          await store.schedule(
            { sessionId, ...(userId === undefined ? {} : { userId }), messages: batch },
            endedInToolCalls ? { foldDelayMs: toolCallFoldDelayMs } : undefined,
          );
        }
      } catch (error) {
        report(error, { sessionId, phase: 'record' });
      }
    });
    queues.set(sessionId, task);
    pending.add(task);
    void task.finally(() => {
      pending.delete(task);
      if (queues.get(sessionId) === task) queues.delete(sessionId);
    });
    waitUntil?.(task);
  };

  const injectBlock = async (prompt: Prompt, call: SessionCall): Promise<Prompt> => {
    const systemIndex = prompt.findIndex((message) => message.role === 'system');
    const hasBlock = prompt.some(
      (message) => message.role === 'system' && RENDERED_BLOCK.test(message.content),
    );
    if (hasBlock) return prompt;
    const base = systemIndex === -1 ? '' : (prompt[systemIndex]?.content as string);
    let system: string;
    try {
      system = await store.buildSystemPrompt(
        call.sessionId,
        base,
        call.userId === undefined ? {} : { userId: call.userId },
      );
    } catch (error) {
      if (ContextError.isInstance(error) && FATAL_RENDER_CODES.has(error.code)) throw error;
      report(error, { sessionId: call.sessionId, phase: 'render' });
      return prompt;
    }
    if (system === base) return prompt;
    if (systemIndex === -1) return [{ role: 'system', content: system }, ...prompt];
    return prompt.map((message, index) =>
      index === systemIndex ? { ...message, role: 'system', content: system } : message,
    ) as Prompt;
  };

  return {
    specificationVersion: 'v3',

    async transformParams({ params }) {
      const session = readSessionOptions(params.providerOptions);
      if (!session) {
        if (params.providerOptions?.[PROVIDER_OPTIONS_KEY] === undefined) return params;
        const { providerOptions: _ctx, ...rest } = params;
        const providerOptions = withoutSessionOptions(params.providerOptions);
        return providerOptions ? { ...rest, providerOptions } : rest;
      }
      const call: SessionCall = { ...session, incoming: incomingMessages(params.prompt) };
      const prompt = await injectBlock(params.prompt, call);
      const { providerOptions: _ctx, ...rest } = params;
      const providerOptions = withoutSessionOptions(params.providerOptions);
      const next: CallOptions = {
        ...rest,
        prompt,
        ...(providerOptions ? { providerOptions } : {}),
      };
      // wrapGenerate and wrapStream receive exactly this object as `params`.
      calls.set(next, call);
      return next;
    },

    async wrapGenerate({ doGenerate, params }) {
      const result = await doGenerate();
      const call = calls.get(params);
      if (call) {
        record(
          call,
          replyFromContent(result.content),
          unifiedFinishReason(result) === 'tool-calls',
        );
      }
      return result;
    },

    async wrapStream({ doStream, params }) {
      const result = await doStream();
      const call = calls.get(params);
      if (!call) return result;
      const reply = new StreamReply();
      const stream = observeStream(
        result.stream,
        reply,
        (outcome) => {
          if (outcome === 'failed') return;
          const messages = reply.messages();
          // An interrupted stream that had not answered yet: the turn did not happen.
          if (outcome === 'interrupted' && messages.length === 0) return;
          record(call, messages, reply.finishReason === 'tool-calls');
        },
        params.abortSignal,
      );
      return { ...result, stream };
    },

    async flush() {
      while (pending.size > 0) await Promise.all([...pending]);
      await store.flush();
    },
  };
}

/** Splits a turn longer than one update may be into consecutive turns. */
function batches(messages: Message[]): Message[][] {
  const result: Message[][] = [];
  for (let start = 0; start < messages.length; start += LIMITS.messagesMaxCount) {
    result.push(messages.slice(start, start + LIMITS.messagesMaxCount));
  }
  return result;
}
