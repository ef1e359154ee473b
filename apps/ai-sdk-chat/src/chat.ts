import { createInterface } from 'node:readline';
import { createSessionContextMiddleware, type SessionContextMiddleware } from '@ctx/ai-sdk';
import {
  createExtractorFromEnv,
  createRepositoryFromUrl,
  type ExtractorFromEnv,
  redactStoreUrl,
} from '@ctx/config';
import {
  assertValidSessionId,
  ContextError,
  type ContextRepository,
  formatSessionContext,
  type SessionContext,
  type SessionContextEvent,
  SessionContextStore,
} from '@ctx/core';
import { toSingleLine } from '@ctx/core/adapter';
import { type ModelMessage, streamText, wrapLanguageModel } from 'ai';
import { type ChatOptions, parseChatOptions, USAGE } from './chat-options.js';
import { createReplyModel, NO_MODEL_HELP, type ReplyModel } from './reply-model.js';
import { createTerminal, type Terminal } from './terminal.js';

/** The instructions every reply starts from; the session context block is appended to them. */
export const BASE_PROMPT = `You are a helpful assistant chatting in a terminal. Answer clearly and concisely.
You only see the last few messages of the conversation. When a <session_context> block follows, it
summarises the whole conversation so far: rely on it for anything older than those messages.`;

/**
 * Messages of earlier turns sent with each reply request (3 user/assistant pairs). Older turns
 * reach the model only through the session context.
 */
export const HISTORY_WINDOW = 6;

/** How long opening a PostgreSQL or Redis store may take before the chat gives up. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Sessions listed by `/sessions`. */
const SESSIONS_SHOWN = 20;

const HELP = `Commands:
  /context       show the session context (after pending updates are saved)
  /sessions      list your sessions, most recent first
  /switch <id>   continue in another session (only its context is loaded)
  /forget        delete the current session's context
  /help          show this list
  /exit          save pending updates and quit (also Ctrl-D)
Anything else is sent to the model.`;

/** The process around the chat: arguments, environment and standard streams. */
export interface ChatIo {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean };
  errorOutput: NodeJS.WritableStream;
}

function messageOf(error: unknown): string {
  return toSingleLine(error instanceof Error ? error.message : String(error));
}

function excerpt(text: string, length: number): string {
  const line = toSingleLine(text);
  return line.length > length ? `${line.slice(0, length - 1).trimEnd()}…` : line;
}

function describeVersion(context: SessionContext | null): string {
  return context
    ? `version ${context.version}, updated ${context.updatedAt.toISOString()}`
    : 'new, no context yet';
}

/** One chat: the current session, its recent messages, and the commands. */
class Chat {
  #sessionId: string;
  #history: ModelMessage[] = [];
  readonly #userId: string;
  readonly #store: SessionContextStore;
  readonly #middleware: SessionContextMiddleware;
  /** The reply model wrapped with the session context middleware. */
  readonly #model: ReturnType<typeof wrapLanguageModel>;
  readonly #terminal: Terminal;

  constructor(options: {
    sessionId: string;
    userId: string;
    store: SessionContextStore;
    middleware: SessionContextMiddleware;
    replyModel: ReplyModel;
    terminal: Terminal;
  }) {
    this.#sessionId = options.sessionId;
    this.#userId = options.userId;
    this.#store = options.store;
    this.#middleware = options.middleware;
    this.#model = wrapLanguageModel({
      model: options.replyModel.model,
      middleware: options.middleware,
    });
    this.#terminal = options.terminal;
  }

  /** Waits until every turn is recorded and folded (or its failure reported). Never rejects. */
  settle(): Promise<void> {
    return this.#middleware.flush();
  }

  /** The session the chat is on now. */
  get sessionId(): string {
    return this.#sessionId;
  }

  /** Reads the current session (checks that the store answers and that the user may use it). */
  open(): Promise<SessionContext | null> {
    return this.#store.get(this.#sessionId, { userId: this.#userId });
  }

  /** Handles one input line; `'exit'` ends the chat. Never throws. */
  async handle(line: string, signal: AbortSignal): Promise<'continue' | 'exit'> {
    const text = line.trim();
    if (!text) return 'continue';
    try {
      if (text.startsWith('/')) return await this.#command(text);
      await this.#turn(text, signal);
    } catch (error) {
      this.#terminal.line(`error: ${messageOf(error)}`);
    }
    return 'continue';
  }

  async #turn(text: string, signal: AbortSignal): Promise<void> {
    const user: ModelMessage = { role: 'user', content: text };
    // The middleware puts the session context into the system prompt and, once the stream has
    // finished, records the new user message and the reply in the store's turn log; the store
    // folds it in the background, so the next prompt is not delayed.
    const result = streamText({
      model: this.#model,
      system: BASE_PROMPT,
      messages: [...this.#history.slice(-HISTORY_WINDOW), user],
      providerOptions: { ctx: { sessionId: this.#sessionId, userId: this.#userId } },
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
      if (signal.aborted) return;
      this.#terminal.line(
        `error: no reply from the model: ${messageOf(error)}. Your message was not kept; try again.`,
      );
      return;
    }
    if (!reply.trim()) {
      this.#terminal.line(
        'error: the model returned no text. Your message was not kept; try again.',
      );
      return;
    }
    this.#history = [...this.#history, user, { role: 'assistant' as const, content: reply }].slice(
      -HISTORY_WINDOW,
    );
  }

  async #command(text: string): Promise<'continue' | 'exit'> {
    const [name = '', ...rest] = text.split(/\s+/);
    const argument = rest.join(' ');
    switch (name.toLowerCase()) {
      case '/context':
        await this.#showContext();
        return 'continue';
      case '/sessions':
        await this.#listSessions();
        return 'continue';
      case '/switch':
        await this.#switch(argument);
        return 'continue';
      case '/forget':
        await this.#forget();
        return 'continue';
      case '/help':
        this.#terminal.line(HELP);
        return 'continue';
      case '/exit':
      case '/quit':
        return 'exit';
      default:
        this.#terminal.line(`Unknown command "${name}". Type /help to see the commands.`);
        return 'continue';
    }
  }

  async #showContext(): Promise<void> {
    await this.settle();
    const context = await this.#store.get(this.#sessionId, { userId: this.#userId });
    this.#terminal.line(
      context
        ? formatSessionContext(context)
        : `Session ${this.#sessionId}: no context yet (it is written after the first reply).`,
    );
  }

  async #listSessions(): Promise<void> {
    await this.settle();
    const page = await this.#store.list({ userId: this.#userId, limit: SESSIONS_SHOWN });
    if (page.items.length === 0) {
      this.#terminal.line(`No stored sessions for user ${this.#userId} yet.`);
      return;
    }
    const width = Math.min(32, Math.max(...page.items.map((item) => item.sessionId.length)));
    this.#terminal.line(`Sessions of user ${this.#userId} (most recent first):`);
    for (const item of page.items) {
      const marker = item.sessionId === this.#sessionId ? '*' : ' ';
      const summary = item.summary ? excerpt(item.summary, 60) : '(empty summary)';
      this.#terminal.line(
        `${marker} ${item.sessionId.padEnd(width)}  v${item.version}  ${item.updatedAt.toISOString()}  ${summary}`,
      );
    }
    if (page.nextCursor)
      this.#terminal.line(`  … only the ${SESSIONS_SHOWN} most recent are shown`);
    if (!page.items.some((item) => item.sessionId === this.#sessionId)) {
      this.#terminal.line(`  (current session ${this.#sessionId} has no context yet)`);
    }
  }

  async #switch(target: string): Promise<void> {
    if (!target) {
      this.#terminal.line('Usage: /switch <session id>');
      return;
    }
    assertValidSessionId(target);
    if (target === this.#sessionId) {
      this.#terminal.line(`Already in session ${target}.`);
      return;
    }
    const context = await this.#store.get(target, { userId: this.#userId });
    this.#sessionId = target;
    this.#history = [];
    this.#terminal.line(`Switched to session ${target} (${describeVersion(context)}).`);
  }

  async #forget(): Promise<void> {
    // Pending updates first: otherwise one could write the context again after the delete.
    await this.settle();
    const deleted = await this.#store.delete(this.#sessionId, { userId: this.#userId });
    this.#history = [];
    this.#terminal.line(
      deleted
        ? `Forgot session ${this.#sessionId}: its context is deleted and the chat starts over.`
        : `Session ${this.#sessionId} had no stored context.`,
    );
  }
}

async function closeQuietly(repository: ContextRepository): Promise<void> {
  try {
    await repository.close();
  } catch {
    // Already failing: the error being reported matters more than the one from closing.
  }
}

function reportBackgroundFailure(terminal: Terminal, event: SessionContextEvent): void {
  if (event.type !== 'failed' || !event.background || event.willRetry) return;
  terminal.interject(
    `(context of ${event.sessionId} not updated yet: ${messageOf(event.error)}; the turn stays recorded for the next update)`,
  );
}

/**
 * Runs the chat until end of input, `/exit`, SIGINT or SIGTERM and returns the exit code: 0 on a
 * normal end (also when no model is configured), 1 when the model configuration or the store
 * fails at startup, 2 for bad arguments.
 */
export async function runChat(io: ChatIo): Promise<number> {
  const terminal = createTerminal(io.output, io.errorOutput, io.env);
  let options: ChatOptions;
  try {
    options = parseChatOptions(io.argv, io.env);
  } catch (error) {
    terminal.error(`ai-sdk-chat: ${messageOf(error)}. Run "ai-sdk-chat --help" for the options.`);
    return 2;
  }
  if (options.help) {
    terminal.line(USAGE);
    return 0;
  }

  let replyModel: ReplyModel | null;
  let extraction: ExtractorFromEnv;
  try {
    replyModel = createReplyModel(io.env);
    if (!replyModel) {
      terminal.line(NO_MODEL_HELP);
      return 0;
    }
    extraction = await createExtractorFromEnv({ ...io.env });
  } catch (error) {
    terminal.error(`ai-sdk-chat: ${messageOf(error)}`);
    return 1;
  }

  const storeLabel = redactStoreUrl(options.store);
  let repository: ContextRepository;
  try {
    repository = await createRepositoryFromUrl(options.store, {
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    });
  } catch (error) {
    terminal.error(`ai-sdk-chat: cannot open the store ${storeLabel}: ${messageOf(error)}`);
    return 1;
  }
  const store = new SessionContextStore({
    repository,
    extractor: extraction.extractor,
    config: {
      enablePlanning: options.planning,
      onEvent: (event) => reportBackgroundFailure(terminal, event),
    },
  });
  const middleware = createSessionContextMiddleware({
    store,
    onError: (error, { phase }) =>
      terminal.interject(
        phase === 'render'
          ? `(could not read the session context: ${messageOf(error)}; replying without it)`
          : `(context not updated: ${messageOf(error)})`,
      ),
  });
  const chat = new Chat({
    sessionId: options.session,
    userId: options.user,
    store,
    middleware,
    replyModel,
    terminal,
  });
  let current: SessionContext | null;
  try {
    current = await chat.open();
  } catch (error) {
    await closeQuietly(repository);
    terminal.error(
      ContextError.hasCode(error, 'OWNERSHIP_MISMATCH')
        ? `ai-sdk-chat: session ${options.session} belongs to another user than ${options.user}: choose another --session, or the right --user`
        : `ai-sdk-chat: cannot use the store ${storeLabel}: ${messageOf(error)}`,
    );
    return 1;
  }

  terminal.line(
    `ctx ai-sdk-chat · session ${options.session} (${describeVersion(current)}) · user ${options.user}`,
  );
  terminal.note(`  replies: ${replyModel.description}`);
  terminal.note(
    `  context: ${extraction.description}${options.planning ? ' · planning mode' : ''}`,
  );
  terminal.note(`  store:   ${storeLabel}`);
  terminal.note('Type a message, or /help for the commands. Ctrl-D or /exit quits.');

  const interactive = io.input.isTTY === true && io.output.isTTY === true;
  const readline = createInterface({
    input: io.input,
    ...(interactive ? { output: io.output, prompt: 'you> ' } : {}),
    terminal: interactive,
  });
  terminal.attach(interactive ? readline : undefined);
  const lines = readline[Symbol.asyncIterator]();
  const stopping = new AbortController();
  const stop = () => {
    if (stopping.signal.aborted) {
      terminal.error(
        'ai-sdk-chat: interrupted again, quitting without waiting for pending updates',
      );
      process.exit(130);
    }
    stopping.abort();
    readline.close();
  };
  readline.on('SIGINT', stop);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  let exitCode = 0;
  try {
    terminal.prompt();
    while (!stopping.signal.aborted) {
      const next = await lines.next();
      if (next.done) break;
      terminal.busy();
      if ((await chat.handle(next.value, stopping.signal)) === 'exit') break;
      terminal.prompt();
    }
  } catch (error) {
    terminal.error(`ai-sdk-chat: reading the input failed: ${messageOf(error)}`);
    exitCode = 1;
  } finally {
    readline.close();
  }
  if (interactive) io.output.write('\n');
  // Resolves once every turn is recorded and every background fold has finished or given up.
  await chat.settle();
  const pending = await store.pendingTurns(chat.sessionId).catch(() => []);
  if (pending.length > 0) {
    terminal.note(
      `(${pending.length} turn(s) are recorded but not yet in the session context; the next update folds them)`,
    );
  }
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  try {
    await repository.close();
  } catch (error) {
    terminal.error(`ai-sdk-chat: closing the store ${storeLabel} failed: ${messageOf(error)}`);
    return 1;
  }
  return exitCode;
}
