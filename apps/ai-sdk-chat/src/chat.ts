import { createSessionContextMiddleware, type SessionContextMiddleware } from '@ctx/ai-sdk';
import type { SessionContextStore } from '@ctx/core';
import { type ModelMessage, streamText, wrapLanguageModel } from 'ai';
import { formatUsage } from 'chat/chat-options';
import { type ChatIo, type ChatTurns, runChatProgram, type TurnRequest } from 'chat/chat-shell';
import { messageOf } from 'chat/error-message';
import type { Terminal } from 'chat/terminal';
import { createReplyModel, NO_MODEL_HELP, type ReplyModel } from './reply-model.js';

export { BASE_PROMPT, HISTORY_WINDOW } from 'chat/chat-shell';

/** The store used when `--store` is not given (relative to the working directory). */
export const DEFAULT_STORE_URL = 'sqlite:./data/ai-sdk-chat.db';

/** The `--help` text. */
export const USAGE = formatUsage({
  command: 'ai-sdk-chat',
  defaultStoreUrl: DEFAULT_STORE_URL,
  environment: 'OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL, CTX_MODEL',
});

/**
 * The AI SDK's turns: `streamText` on the reply model wrapped with the session context
 * middleware, which puts the session context into the system prompt and, once the stream has
 * finished, records the new user message and the reply in the store's turn log; the store folds
 * it in the background, so the next prompt is not delayed.
 */
class StreamTextTurns implements ChatTurns {
  readonly #middleware: SessionContextMiddleware;
  /** The reply model wrapped with the session context middleware. */
  readonly #model: ReturnType<typeof wrapLanguageModel>;
  readonly #terminal: Terminal;

  constructor(parts: { store: SessionContextStore; model: ReplyModel; terminal: Terminal }) {
    const terminal = parts.terminal;
    this.#middleware = createSessionContextMiddleware({
      store: parts.store,
      onError: (error, { phase }) =>
        terminal.interject(
          phase === 'render'
            ? `(could not read the session context: ${messageOf(error)}; replying without it)`
            : `(context not updated: ${messageOf(error)})`,
        ),
    });
    this.#model = wrapLanguageModel({ model: parts.model.model, middleware: this.#middleware });
    this.#terminal = terminal;
  }

  async reply(request: TurnRequest, signal: AbortSignal): Promise<string | undefined> {
    const messages: ModelMessage[] = request.messages.map((message) =>
      message.role === 'assistant'
        ? { role: 'assistant', content: message.content }
        : { role: 'user', content: message.content },
    );
    const result = streamText({
      model: this.#model,
      system: request.system,
      messages,
      providerOptions: { ctx: { sessionId: request.sessionId, userId: request.userId } },
      abortSignal: signal,
      maxRetries: 1,
      onError: () => {},
    });
    let reply = '';
    try {
      for await (const delta of result.textStream) {
        if (!reply) this.#terminal.write('assistant: ');
        reply += delta;
        this.#terminal.write(delta);
      }
      if (reply) this.#terminal.write('\n');
      // textStream ends quietly on a provider error; the result's promises reject with it.
      await result.finishReason;
    } catch (error) {
      if (reply) this.#terminal.write('\n');
      throw error;
    }
    if (!reply.trim()) {
      this.#terminal.line(
        'error: the model returned no text. Your message was not kept; try again.',
      );
      return undefined;
    }
    return reply;
  }

  settle(): Promise<void> {
    return this.#middleware.flush();
  }
}

/**
 * Runs the chat until end of input, `/exit`, SIGINT or SIGTERM and returns the exit code: 0 on a
 * normal end (also when no model is configured), 1 when the model configuration or the store
 * fails at startup, 2 for bad arguments.
 */
export function runChat(io: ChatIo): Promise<number> {
  return runChatProgram(io, {
    name: 'ai-sdk-chat',
    usage: USAGE,
    defaultStoreUrl: DEFAULT_STORE_URL,
    noModelHelp: NO_MODEL_HELP,
    createReplyModel,
    createTurns: (parts) => new StreamTextTurns(parts),
  });
}
