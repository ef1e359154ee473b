import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';

/** The command-line options of the chat. */
export interface ChatOptions {
  /** Store URL: `sqlite:./file.db`, `postgres://…`, `redis://…`, `memory:`. @default 'sqlite:./data/chat.db' in chat */
  store: string;
  /** Session to open. @default 'default' */
  session: string;
  /** Who is chatting; owns the sessions they create. @default the OS user name */
  user: string;
  /** Planning mode: the context also keeps a goal, a plan and the completed steps. @default false */
  planning: boolean;
  /** Print the usage and exit. */
  help: boolean;
}

/** The store used when `--store` is not given (relative to the working directory). */
export const DEFAULT_STORE_URL = 'sqlite:./data/chat.db';
/** The session opened when `--session` is not given. */
export const DEFAULT_SESSION_ID = 'default';

/** What differs in the `--help` text of the apps built on this chat. */
export interface UsageOptions {
  /** The command, e.g. `chat`. */
  command: string;
  /** The store used when `--store` is not given. */
  defaultStoreUrl: string;
  /** The environment variables the app reads, comma-separated. */
  environment: string;
}

/** Writes the `--help` text of a chat app. */
export function formatUsage(options: UsageOptions): string {
  return `Usage: ${options.command} [options]

An interactive terminal chat whose session context (summary; with --planning also goal, plan and
completed steps) is rewritten by a model after every turn and injected into the next system prompt.

Options:
  --store <url>     where contexts are stored (default: ${options.defaultStoreUrl})
                    sqlite:./file.db · postgres://user@host:5432/db · redis://host:6379 · memory:
  --session <id>    session to open (default: ${DEFAULT_SESSION_ID})
  --user <id>       your user id (default: your OS user name)
  --planning        keep a goal, a plan and the completed steps as well
  --help            show this help

Commands while chatting: /context /sessions /switch <id> /forget /help /exit

Environment: ${options.environment}`;
}

/** The `--help` text. */
export const USAGE = formatUsage({
  command: 'chat',
  defaultStoreUrl: DEFAULT_STORE_URL,
  environment:
    'OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL, GEMINI_API_KEY, GEMINI_MODEL, CTX_MODEL',
});

/** Bad command-line arguments; the message says which. */
export class UsageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}

function defaultUser(env: Readonly<Record<string, string | undefined>>): string {
  try {
    const name = userInfo().username;
    if (name) return name;
  } catch {
    // No passwd entry for this uid (some containers): fall back to the environment.
  }
  return env.USER || env.USERNAME || 'user';
}

/**
 * Parses the command line (without `node` and the script); `--store` defaults to
 * `defaultStoreUrl`. Throws {@link UsageError}.
 */
export function parseChatOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
  defaultStoreUrl: string = DEFAULT_STORE_URL,
): ChatOptions {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error), { cause: error });
  }
  for (const name of ['store', 'session', 'user'] as const) {
    const value = values[name];
    if (value !== undefined && value.trim() === '') {
      throw new UsageError(`--${name} must not be empty`);
    }
  }
  return {
    store: values.store ?? defaultStoreUrl,
    session: values.session ?? DEFAULT_SESSION_ID,
    user: values.user ?? defaultUser(env),
    planning: values.planning ?? false,
    help: values.help ?? false,
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      store: { type: 'string' },
      session: { type: 'string' },
      user: { type: 'string' },
      planning: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
}
