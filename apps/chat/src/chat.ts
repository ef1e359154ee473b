import type { Message, SessionContextStore } from '@ctx/core';
import { DEFAULT_STORE_URL, USAGE } from './chat-options.js';
import { type ChatIo, type ChatTurns, runChatProgram, type TurnRequest } from './chat-shell.js';
import { messageOf } from './error-message.js';
import { createReplyModel, NO_MODEL_HELP, type ReplyModel } from './reply-model.js';
import type { Terminal } from './terminal.js';

export { BASE_PROMPT, type ChatIo, HISTORY_WINDOW } from './chat-shell.js';

/**
 * The chat's turns: the store builds the system prompt with the session context, the reply model
 * answers, and the turn is scheduled for the next context update.
 */
class ReplyModelTurns implements ChatTurns {
  readonly #store: SessionContextStore;
  readonly #replyModel: ReplyModel;
  readonly #terminal: Terminal;

  constructor(parts: { store: SessionContextStore; model: ReplyModel; terminal: Terminal }) {
    this.#store = parts.store;
    this.#replyModel = parts.model;
    this.#terminal = parts.terminal;
  }

  async reply(request: TurnRequest, signal: AbortSignal): Promise<string> {
    let system = request.system;
    try {
      system = await this.#store.buildSystemPrompt(request.sessionId, request.system, {
        userId: request.userId,
      });
    } catch (error) {
      this.#terminal.note(
        `(could not read the session context: ${messageOf(error)}; replying without it)`,
      );
    }
    const reply = await this.#replyModel.reply({ system, messages: request.messages }, { signal });
    this.#terminal.line(`assistant: ${reply}`);
    const assistant: Message = { role: 'assistant', content: reply };
    try {
      // Recorded in the store's turn log at once; folded in the background, so the next prompt is
      // not delayed by the model call of the context update.
      await this.#store.schedule({
        sessionId: request.sessionId,
        userId: request.userId,
        messages: [...request.messages.slice(-1), assistant],
      });
    } catch (error) {
      this.#terminal.note(`(context not updated: ${messageOf(error)})`);
    }
    return reply;
  }

  settle(): Promise<void> {
    // Resolves once every background fold has finished or given up; never rejects.
    return this.#store.flush();
  }
}

/**
 * Runs the chat until end of input, `/exit`, SIGINT or SIGTERM and returns the exit code: 0 on a
 * normal end (also when no model is configured), 1 when the model configuration or the store
 * fails at startup, 2 for bad arguments.
 */
export function runChat(io: ChatIo): Promise<number> {
  return runChatProgram(io, {
    name: 'chat',
    usage: USAGE,
    defaultStoreUrl: DEFAULT_STORE_URL,
    noModelHelp: NO_MODEL_HELP,
    createReplyModel,
    createTurns: (parts) => new ReplyModelTurns(parts),
  });
}
