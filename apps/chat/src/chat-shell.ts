import { createInterface } from 'node:readline';
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
  type Message,
  type SessionContext,
  type SessionContextEvent,
  SessionContextStore,
} from '@ctx/core';
import { toSingleLine } from '@ctx/core/adapter';
import { type ChatOptions, parseChatOptions } from './chat-options.js';
import { messageOf } from './error-message.js';
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

/** One user message to answer, with the recent messages before it. */
export interface TurnRequest {
  sessionId: string;
  userId: string;
  /** {@link BASE_PROMPT}; the session context is not in it yet. */
  system: string;
  /** The last {@link HISTORY_WINDOW} messages, then the new user message. */
  messages: Message[];
}

/** How an app answers a turn and records it for the session context. */
export interface ChatTurns {
  /**
   * Writes the reply to the terminal and records the turn; returns the reply to keep in the
   * history, or `undefined` when the message is not kept (the reason is already shown). Throws
   * when the model gives no reply.
   */
  reply(request: TurnRequest, signal: AbortSignal): Promise<string | undefined>;
  /** Waits until every turn is recorded and folded (or its failure reported). Never rejects. */
  settle(): Promise<void>;
}

/** What makes one chat app: its name, its defaults, its reply model and how it answers. */
export interface ChatProgram<Model extends { readonly description: string }> {
  /** The command, used in error messages and the banner. */
  name: string;
  /** The `--help` text. */
  usage: string;
  /** The store used when `--store` is not given. */
  defaultStoreUrl: string;
  /** Printed (exit code 0) when the environment names no reply model. */
  noModelHelp: string;
  /** Reads the reply model from the environment; `null` when none is configured. */
  createReplyModel(env: Readonly<Record<string, string | undefined>>): Model | null;
  createTurns(parts: { store: SessionContextStore; model: Model; terminal: Terminal }): ChatTurns;
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
  #history: Message[] = [];
  readonly #userId: string;
  readonly #store: SessionContextStore;
  readonly #turns: ChatTurns;
  readonly #terminal: Terminal;

  constructor(options: {
    sessionId: string;
    userId: string;
    store: SessionContextStore;
    turns: ChatTurns;
    terminal: Terminal;
  }) {
    this.#sessionId = options.sessionId;
    this.#userId = options.userId;
    this.#store = options.store;
    this.#turns = options.turns;
    this.#terminal = options.terminal;
  }

  /** Waits until every turn is recorded and folded (or its failure reported). Never rejects. */
  settle(): Promise<void> {
    return this.#turns.settle();
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
    const user: Message = { role: 'user', content: text };
    let reply: string | undefined;
    try {
      reply = await this.#turns.reply(
        {
          sessionId: this.#sessionId,
          userId: this.#userId,
          system: BASE_PROMPT,
          messages: [...this.#history.slice(-HISTORY_WINDOW), user],
        },
        signal,
      );
    } catch (error) {
      if (signal.aborted) return;
      this.#terminal.line(
        `error: no reply from the model: ${messageOf(error)}. Your message was not kept; try again.`,
      );
      return;
    }
    if (reply === undefined) return;
    const assistant: Message = { role: 'assistant', content: reply };
    this.#history = [...this.#history, user, assistant].slice(-HISTORY_WINDOW);
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
    await this.#turns.settle();
    const context = await this.#store.get(this.#sessionId, { userId: this.#userId });
    this.#terminal.line(
      context
        ? formatSessionContext(context)
        : `Session ${this.#sessionId}: no context yet (it is written after the first reply).`,
    );
  }

  async #listSessions(): Promise<void> {
    await this.#turns.settle();
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
    await this.#turns.settle();
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
 * Runs a chat app until end of input, `/exit`, SIGINT or SIGTERM and returns the exit code: 0 on
 * a normal end (also when no model is configured), 1 when the model configuration or the store
 * fails at startup, 2 for bad arguments.
 */
export async function runChatProgram<Model extends { readonly description: string }>(
  io: ChatIo,
  program: ChatProgram<Model>,
): Promise<number> {
  const name = program.name;
  const terminal = createTerminal(io.output, io.errorOutput, io.env);
  let options: ChatOptions;
  try {
    options = parseChatOptions(io.argv, io.env, program.defaultStoreUrl);
  } catch (error) {
    terminal.error(`${name}: ${messageOf(error)}. Run "${name} --help" for the options.`);
    return 2;
  }
  if (options.help) {
    terminal.line(program.usage);
    return 0;
  }

  let replyModel: Model | null;
  let extraction: ExtractorFromEnv;
  try {
    replyModel = program.createReplyModel(io.env);
    if (!replyModel) {
      terminal.line(program.noModelHelp);
      return 0;
    }
    extraction = await createExtractorFromEnv({ ...io.env });
  } catch (error) {
    terminal.error(`${name}: ${messageOf(error)}`);
    return 1;
  }

  const storeLabel = redactStoreUrl(options.store);
  let repository: ContextRepository;
  try {
    repository = await createRepositoryFromUrl(options.store, {
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    });
  } catch (error) {
    terminal.error(`${name}: cannot open the store ${storeLabel}: ${messageOf(error)}`);
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
  const chat = new Chat({
    sessionId: options.session,
    userId: options.user,
    store,
    turns: program.createTurns({ store, model: replyModel, terminal }),
    terminal,
  });
  let current: SessionContext | null;
  try {
    current = await chat.open();
  } catch (error) {
    await closeQuietly(repository);
    terminal.error(
      ContextError.hasCode(error, 'OWNERSHIP_MISMATCH')
        ? `${name}: session ${options.session} belongs to another user than ${options.user}: choose another --session, or the right --user`
        : `${name}: cannot use the store ${storeLabel}: ${messageOf(error)}`,
    );
    return 1;
  }

  terminal.line(
    `ctx ${name} · session ${options.session} (${describeVersion(current)}) · user ${options.user}`,
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
      terminal.error(`${name}: interrupted again, quitting without waiting for pending updates`);
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
    terminal.error(`${name}: reading the input failed: ${messageOf(error)}`);
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
    terminal.error(`${name}: closing the store ${storeLabel} failed: ${messageOf(error)}`);
    return 1;
  }
  return exitCode;
}
