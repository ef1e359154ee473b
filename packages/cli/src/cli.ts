import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createExtractorFromEnv,
  createRepositoryFromUrl,
  type ParsedStoreUrl,
  parseStoreUrl,
  redactStoreUrl,
} from '@ctx/config';
import {
  assertValidSessionId,
  ContextError,
  type ContextRepository,
  formatSessionContext,
  LIST_LIMITS,
  MIN_RENDER_CHARS,
  renderSessionContext,
  type SessionContext,
  type SessionContextStore,
} from '@ctx/core';
import { formatFields, formatListTable, formatPendingTurns, toJson } from './cli-format.js';
import { createTurnStore } from './turns.js';
import { runWorker, type WorkerSettings } from './worker.js';

/** Where the CLI writes: `process.stdout`/`process.stderr`, or a test double. */
export interface CliOutput {
  write(chunk: string): unknown;
  /** True when the stream is a terminal. */
  isTTY?: boolean;
  /** The terminal's width, when it is one; `list` fits its summary column to it. */
  columns?: number;
}

/** What {@link runCli} reads and writes besides its arguments. */
export interface CliIo {
  /** Results. */
  stdout: CliOutput;
  /** Error messages, one line each. */
  stderr: CliOutput;
  /**
   * Environment: `CTX_STORE_URL` (the store when `--store` is absent), `CTX_DEBUG` (print stack
   * traces of unexpected errors), and for `ctx worker` the model variables of
   * `createExtractorFromEnv` (`CTX_MODEL`, `OPENAI_API_KEY`, `GEMINI_API_KEY`, …).
   * @default process.env
   */
  env?: Record<string, string | undefined>;
  /**
   * How a long-running command (`ctx worker`) learns that it should stop: it calls this with a
   * listener once it runs, and the returned function when it is done. On the first call of the
   * listener it stops gracefully (no new round, the current drain aborted, the store closed) and
   * `runCli` resolves with 0. The `ctx` binary calls the listener on SIGTERM and SIGINT, and exits
   * at once (code 1) on a second signal.
   * @default never asked to stop: `ctx worker` runs until the process ends (`--once` still ends)
   * @example
   * ```ts
   * const controller = new AbortController();
   * const done = runCli(['worker'], {
   *   stdout, stderr,
   *   onStopRequest(listener) {
   *     const abort = () => listener('aborted');
   *     controller.signal.addEventListener('abort', abort);
   *     return () => controller.signal.removeEventListener('abort', abort);
   *   },
   * });
   * ```
   */
  onStopRequest?: (listener: (reason: string) => void) => () => void;
}

/** Exit codes of {@link runCli}. */
export const EXIT_CODES = {
  /** The command did what was asked. */
  ok: 0,
  /** The command failed: not found, unreachable store, invalid store URL, storage error. */
  failure: 1,
  /** The command line is wrong: unknown command or option, missing or bad argument, no store. */
  usage: 2,
} as const;

/** The commands `ctx` understands. */
export const CLI_COMMANDS = [
  'list',
  'get',
  'print',
  'render',
  'delete',
  'pending',
  'discard',
  'purge-expired',
  'migrate',
  'worker',
] as const;

type Command = (typeof CLI_COMMANDS)[number];
type Values = {
  store?: string;
  json?: boolean;
  user?: string;
  limit?: string;
  cursor?: string;
  'max-chars'?: string;
  timeout?: string;
  interval?: string;
  'older-than'?: string;
  concurrency?: string;
  once?: boolean;
  planning?: boolean;
  instructions?: string;
  help?: boolean;
  version?: boolean;
};

const DEFAULT_TIMEOUT_MS = 5000;
/** Defaults of `ctx worker`. */
const WORKER_DEFAULTS = {
  intervalMs: 1000,
  olderThanMs: 5000,
  concurrency: 4,
  limit: 100,
} as const;
const GLOBAL_OPTIONS = ['store', 'timeout', 'help', 'version'] as const;
const COMMAND_OPTIONS: Record<Command, readonly (keyof Values)[]> = {
  list: ['user', 'limit', 'cursor', 'json'],
  get: ['json'],
  print: [],
  render: ['max-chars'],
  delete: ['json'],
  pending: ['json'],
  discard: ['json'],
  'purge-expired': ['json'],
  migrate: ['json'],
  worker: [
    'interval',
    'older-than',
    'concurrency',
    'limit',
    'once',
    'planning',
    'instructions',
    'json',
  ],
};
const TAKES_SESSION_ID: ReadonlySet<Command> = new Set([
  'get',
  'print',
  'render',
  'delete',
  'pending',
  'discard',
]);

const HELP = `ctx — inspect and manage ctx session contexts in any store, and fold their turns

Usage: ctx <command> [arguments] [options]

Commands:
  list [--user U] [--limit N] [--cursor C] [--json]
                      sessions, most recently updated first (one page; --cursor for the next)
  get <id> [--json]   every stored field of one session
  print <id>          one session, formatted for reading
  render <id> [--max-chars N]
                      the <session_context> block an agent gets in its system prompt
  delete <id> [--json]
                      delete a session and its history (exit 1 when it did not exist)
  pending <id> [--json]
                      the session's turns recorded but not folded yet, oldest first
  discard <id> <turn-id>... [--json]
                      take pending turns out without folding them, for a turn the model can
                      never fold (exit 1 when none of them was pending); --json keeps them
  purge-expired [--json]
                      delete expired sessions now, forget old tombstones and folded turn ids
  migrate [--json]    create or upgrade the tables (PostgreSQL, MySQL, SQLite; Redis needs none;
                      a backend registered with registerStoreScheme: its adapter's migrate())
  worker [--interval MS] [--older-than MS] [--concurrency N] [--limit N] [--once]
         [--planning] [--instructions TEXT] [--json]
                      fold the turns no instance folds (crashed, redeployed, idle), round after
                      round, until SIGTERM or Ctrl-C; the model comes from the environment
                      (CTX_MODEL, OPENAI_API_KEY, GEMINI_API_KEY; none: extractive)

Worker options:
      --interval <ms>     pause after a round that folded nothing (default ${WORKER_DEFAULTS.intervalMs})
      --older-than <ms>   only turns pending this long; fresher ones are left to the instance
                          that recorded them (default ${WORKER_DEFAULTS.olderThanMs})
      --concurrency <n>   drains side by side per round (default ${WORKER_DEFAULTS.concurrency})
      --limit <n>         sessions per drain (default ${WORKER_DEFAULTS.limit})
      --once              one round, then exit (1 when a fold failed): for cron
      --planning          fold with planning (goal, plan, steps), as your app does
      --instructions <t>  the extractor instructions your app uses
      --json              one JSON line per round: {round, sessions, turns, failed, durationMs}

Options:
  -s, --store <url>   the store: sqlite:./data/ctx.db, postgres://user@host/db,
                      redis://host:6379, mysql://user@host/db, memory:
                      (default: $CTX_STORE_URL)
      --timeout <ms>  give up on an unreachable store after this long (default ${DEFAULT_TIMEOUT_MS})
      --json          machine-readable output (dates as ISO 8601 strings)
  -h, --help          this help
  -V, --version       the version

Exit codes: 0 done, 1 failed (not found, unreachable store, bad store URL; discard: none of the
turns was pending; worker --once: a fold failed), 2 bad command line. The worker stops on SIGTERM
or Ctrl-C (exit 0); a second signal exits 1.
`;

class UsageError extends Error {}

class CommandFailure extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode: number = EXIT_CODES.failure) {
    super(message);
    this.exitCode = exitCode;
  }
}

function readVersion(): string {
  try {
    const manifest = JSON.parse(
      readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
    ) as { version?: string };
    return manifest.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        store: { type: 'string', short: 's' },
        json: { type: 'boolean' },
        user: { type: 'string', short: 'u' },
        limit: { type: 'string', short: 'n' },
        cursor: { type: 'string' },
        'max-chars': { type: 'string' },
        timeout: { type: 'string' },
        interval: { type: 'string' },
        'older-than': { type: 'string' },
        concurrency: { type: 'string' },
        once: { type: 'boolean' },
        planning: { type: 'boolean' },
        instructions: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // parseArgs explains at length how to pass a value starting with "-"; the first sentence is enough.
    throw new UsageError(message.split(/\.\s/)[0]?.replace(/\.$/, '') ?? message);
  }
}

function parseInteger(name: string, text: string, min: number, max: number): number {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(Number.isSafeInteger(value) && value >= min && value <= max)) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

/** One line: no newlines, the store URL's password masked. */
function oneLine(message: string, storeUrl: string | undefined): string {
  let line = message.replace(/\s*\n\s*/g, ' ').trim();
  if (storeUrl) {
    line = line.split(storeUrl).join(redactStoreUrl(storeUrl));
    const password = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*?:([^/?#@]+)@/i.exec(storeUrl)?.[1];
    if (password && password.length >= 3) line = line.split(password).join('***');
  }
  return line;
}

interface Context {
  values: Values;
  storeUrl: string;
  store: ParsedStoreUrl;
  timeoutMs: number;
  io: CliIo;
}

function write(output: CliOutput, text: string): void {
  output.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Runs `body` with `resource`, then closes it (quietly when `body` failed: its error wins). */
async function closing<R extends { close(): Promise<unknown> }, T>(
  resource: R,
  body: (resource: R) => Promise<T>,
): Promise<T> {
  let result: T;
  try {
    result = await body(resource);
  } catch (error) {
    await resource.close().catch(() => undefined);
    throw error;
  }
  await resource.close();
  return result;
}

async function withRepository<T>(
  context: Context,
  migrate: boolean,
  body: (repository: ContextRepository) => Promise<T>,
): Promise<T> {
  const repository = await createRepositoryFromUrl(context.storeUrl, {
    migrate,
    connectTimeoutMs: context.timeoutMs,
  });
  return closing(repository, body);
}

/**
 * Runs `body` with a store over the repository, for reading and discarding pending turns (it has
 * no model: see `createTurnStore`); closes the store, then the repository.
 */
async function withTurnStore<T>(
  context: Context,
  body: (store: SessionContextStore) => Promise<T>,
): Promise<T> {
  assertSqliteFileExists(context.store);
  return withRepository(context, false, (repository) => closing(createTurnStore(repository), body));
}

function assertSqliteFileExists(store: ParsedStoreUrl): void {
  if (store.kind !== 'sqlite') return;
  const { filename } = store;
  if (filename === ':memory:' || filename.startsWith('file:')) return;
  if (!existsSync(filename)) {
    const absolute = resolve(filename);
    const where = absolute === filename ? `"${filename}"` : `"${filename}" (${absolute})`;
    throw new CommandFailure(
      `SQLite database ${where} does not exist: check the path, or create it with ctx migrate`,
    );
  }
}

/** `text` as one shell word. */
function quoteArgument(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function notFound(sessionId: string, context: Context): CommandFailure {
  return new CommandFailure(
    `session "${sessionId}" not found in ${redactStoreUrl(context.storeUrl)}`,
  );
}

async function readSession(sessionId: string, context: Context): Promise<SessionContext> {
  assertSqliteFileExists(context.store);
  const found = await withRepository(context, false, (repository) => repository.get(sessionId));
  if (!found) throw notFound(sessionId, context);
  return found;
}

async function runList(context: Context): Promise<number> {
  const { values, io } = context;
  const limit =
    values.limit === undefined
      ? LIST_LIMITS.defaultLimit
      : parseInteger('limit', values.limit, 1, LIST_LIMITS.maxLimit);
  assertSqliteFileExists(context.store);
  const page = await withRepository(context, false, (repository) =>
    repository.list({
      ...(values.user === undefined ? {} : { userId: values.user }),
      limit,
      cursor: values.cursor ?? null,
    }),
  );
  if (values.json) {
    write(io.stdout, toJson(page));
    return EXIT_CODES.ok;
  }
  if (page.items.length === 0) {
    write(
      io.stdout,
      values.user === undefined ? 'No sessions.' : `No sessions for user "${values.user}".`,
    );
  } else {
    write(io.stdout, formatListTable(page.items, io.stdout.isTTY ? io.stdout.columns : undefined));
  }
  if (page.nextCursor) {
    const flags = [
      values.user === undefined ? '' : ` --user ${quoteArgument(values.user)}`,
      values.limit === undefined ? '' : ` --limit ${limit}`,
    ].join('');
    write(io.stdout, `\nMore: ctx list${flags} --cursor ${page.nextCursor}`);
  }
  return EXIT_CODES.ok;
}

async function runDelete(sessionId: string, context: Context): Promise<number> {
  const { io, values } = context;
  assertSqliteFileExists(context.store);
  const deleted = await withRepository(context, false, (repository) =>
    repository.delete(sessionId),
  );
  if (values.json) write(io.stdout, toJson({ sessionId, deleted }));
  if (!deleted) {
    throw new CommandFailure(`session "${sessionId}" not found: nothing deleted`);
  }
  if (!values.json) write(io.stdout, `Deleted session "${sessionId}".`);
  return EXIT_CODES.ok;
}

async function runPending(sessionId: string, context: Context): Promise<number> {
  const { io, values } = context;
  const turns = await withTurnStore(context, (store) => store.pendingTurns(sessionId));
  if (values.json) {
    write(io.stdout, toJson({ sessionId, turns }));
  } else {
    write(
      io.stdout,
      turns.length === 0
        ? `No pending turns for session "${sessionId}".`
        : formatPendingTurns(turns),
    );
  }
  return EXIT_CODES.ok;
}

async function runDiscard(sessionId: string, turnIds: string[], context: Context): Promise<number> {
  const { io, values } = context;
  const discarded = await withTurnStore(context, (store) =>
    store.discardPendingTurns(sessionId, turnIds),
  );
  const gone = new Set(discarded.map((turn) => turn.turnId));
  const notPending = [...new Set(turnIds)].filter((turnId) => !gone.has(turnId));
  if (values.json) write(io.stdout, toJson({ sessionId, discarded, notPending }));
  if (discarded.length === 0) {
    const which =
      notPending.length === 1
        ? `turn "${notPending[0]}" is not pending`
        : `none of the turns ${notPending.map((turnId) => `"${turnId}"`).join(', ')} is pending`;
    throw new CommandFailure(
      `${which} in session "${sessionId}": nothing discarded (ctx pending ${quoteArgument(sessionId)} lists the pending ones)`,
    );
  }
  if (!values.json) {
    const ids = discarded.map((turn) => turn.turnId).join(', ');
    const count = discarded.length === 1 ? '1 turn' : `${discarded.length} turns`;
    write(io.stdout, `Discarded ${count} of session "${sessionId}" without folding: ${ids}.`);
    if (notPending.length > 0) {
      write(io.stdout, `Not pending, left alone: ${notPending.join(', ')}.`);
    }
  }
  return EXIT_CODES.ok;
}

async function runPurge(context: Context): Promise<number> {
  const { io, values } = context;
  assertSqliteFileExists(context.store);
  // Every repository stores each session's expiry with it and can purge without knowing the TTL;
  // purging also forgets tombstones older than the retention (`?tombstones=`).
  const purged = await withRepository(context, false, async (repository) => {
    if (typeof repository.purgeExpired !== 'function') {
      throw new CommandFailure(
        `${redactStoreUrl(context.storeUrl)} cannot purge: its repository has no purgeExpired()`,
      );
    }
    return repository.purgeExpired();
  });
  write(
    io.stdout,
    values.json
      ? toJson({ purged })
      : `Purged ${purged} expired session${purged === 1 ? '' : 's'}.`,
  );
  return EXIT_CODES.ok;
}

interface Migratable extends ContextRepository {
  migrate(): Promise<{ version: number; applied: string[] }>;
  schema?: string;
  tableName?: string;
}

async function runMigrate(context: Context): Promise<number> {
  const { store, io, values } = context;
  const report = (json: Record<string, unknown>, text: string) => {
    write(io.stdout, values.json ? toJson(json) : text);
    return EXIT_CODES.ok;
  };
  switch (store.kind) {
    case 'memory':
      return report(
        { store: 'memory', migrated: false },
        'memory: stores live inside one process: nothing to migrate.',
      );
    case 'redis':
      return report(
        { store: 'redis', migrated: false },
        'Redis needs no migration: keys are created as sessions are written. Nothing to do.',
      );
    case 'sqlite': {
      const existed = store.filename === ':memory:' || existsSync(store.filename);
      const tableName = await withRepository(
        context,
        true,
        async (repository) => (repository as { tableName?: string }).tableName,
      );
      return report(
        { store: 'sqlite', filename: store.filename, tableName, created: !existed },
        `SQLite database "${store.filename}" ${existed ? 'is' : 'was created and is'} up to date (table ${tableName}).`,
      );
    }
    case 'postgres': {
      const { result, where } = await withRepository(context, false, async (repository) => {
        const migratable = repository as Migratable;
        return {
          result: await migratable.migrate(),
          where: `${migratable.schema}.${migratable.tableName}`,
        };
      });
      return report(
        { store: 'postgres', table: where, schemaVersion: result.version, applied: result.applied },
        result.applied.length === 0
          ? `PostgreSQL tables ${where} are up to date (schema version ${result.version}).`
          : `Migrated PostgreSQL tables ${where} to schema version ${result.version} (applied ${result.applied.join(', ')}).`,
      );
    }
    case 'mysql': {
      const database = decodeURIComponent(new URL(store.url).pathname.slice(1));
      const { result, where } = await withRepository(context, false, async (repository) => {
        const migratable = repository as Migratable;
        return {
          result: await migratable.migrate(),
          where: `${database}.${migratable.tableName}`,
        };
      });
      return report(
        { store: 'mysql', table: where, schemaVersion: result.version, applied: result.applied },
        result.applied.length === 0
          ? `MySQL tables ${where} are up to date (schema version ${result.version}).`
          : `Migrated MySQL tables ${where} to schema version ${result.version} (applied ${result.applied.join(', ')}).`,
      );
    }
    default: {
      // A backend registered with @ctx/config's registerStoreScheme: its repository's own
      // migrate(), when the adapter has one (a driver repository exposes its driver's).
      // StoreKind grows with module augmentation, which this package cannot see: widen it.
      const kind = (store as { kind: string }).kind;
      const result = await withRepository(context, false, async (repository) => {
        const migrate = (repository as { migrate?: () => Promise<unknown> }).migrate;
        return typeof migrate === 'function'
          ? { migrated: true, result: await migrate.call(repository) }
          : { migrated: false };
      });
      return report(
        { store: kind, ...result },
        result.migrated
          ? `Migrated the ${kind} store${'result' in result && result.result !== undefined ? `: ${JSON.stringify(result.result)}` : '.'}`
          : `The ${kind} store's adapter has no migrate(): nothing to do.`,
      );
    }
  }
}

function readWorkerSettings(values: Values): WorkerSettings {
  const integer = (name: keyof Values, fallback: number, min: number, max: number) => {
    const text = values[name];
    return typeof text === 'string' ? parseInteger(name, text, min, max) : fallback;
  };
  if (values.instructions !== undefined && values.instructions.trim() === '') {
    throw new UsageError('--instructions needs a text');
  }
  return {
    intervalMs: integer('interval', WORKER_DEFAULTS.intervalMs, 10, 86_400_000),
    olderThanMs: integer('older-than', WORKER_DEFAULTS.olderThanMs, 0, 604_800_000),
    concurrency: integer('concurrency', WORKER_DEFAULTS.concurrency, 1, 64),
    limit: integer('limit', WORKER_DEFAULTS.limit, 1, 10_000),
    once: values.once ?? false,
    json: values.json ?? false,
    planning: values.planning ?? false,
    instructions: values.instructions,
  };
}

async function runWorkerCommand(context: Context): Promise<number> {
  const { io, storeUrl } = context;
  const settings = readWorkerSettings(context.values);
  assertSqliteFileExists(context.store);
  const model = await createExtractorFromEnv(io.env ?? process.env);
  return withRepository(context, false, (repository) =>
    runWorker(
      {
        repository,
        extractor: model.extractor,
        storeDescription: redactStoreUrl(storeUrl),
        modelDescription: model.description,
      },
      settings,
      {
        report: (line) => write(io.stdout, line),
        fail: (line) => write(io.stderr, `ctx: ${oneLine(line, storeUrl)}`),
        ...(io.onStopRequest ? { onStopRequest: io.onStopRequest } : {}),
      },
    ),
  );
}

async function runCommand(command: Command, args: string[], context: Context): Promise<number> {
  const { io, values } = context;
  const sessionId = args[0] as string;
  switch (command) {
    case 'list':
      return runList(context);
    case 'get': {
      const found = await readSession(sessionId, context);
      write(io.stdout, values.json ? toJson(found) : formatFields(found));
      return EXIT_CODES.ok;
    }
    case 'print':
      write(io.stdout, formatSessionContext(await readSession(sessionId, context)));
      return EXIT_CODES.ok;
    case 'render': {
      const maxChars =
        values['max-chars'] === undefined
          ? undefined
          : parseInteger('max-chars', values['max-chars'], MIN_RENDER_CHARS, 1_000_000);
      const block = renderSessionContext(
        await readSession(sessionId, context),
        maxChars === undefined ? {} : { maxChars },
      );
      if (block !== '') write(io.stdout, block);
      return EXIT_CODES.ok;
    }
    case 'delete':
      return runDelete(sessionId, context);
    case 'pending':
      return runPending(sessionId, context);
    case 'discard':
      return runDiscard(sessionId, args.slice(1), context);
    case 'purge-expired':
      return runPurge(context);
    case 'migrate':
      return runMigrate(context);
    case 'worker':
      return runWorkerCommand(context);
  }
}

function prepare(
  argv: string[],
  io: CliIo,
): { command: Command; args: string[]; values: Values } | number {
  const { values, positionals } = parseCommandLine(argv);
  if (values.help) {
    write(io.stdout, HELP);
    return EXIT_CODES.ok;
  }
  if (values.version) {
    write(io.stdout, readVersion());
    return EXIT_CODES.ok;
  }
  const [name, ...args] = positionals;
  if (name === undefined) throw new UsageError('missing command');
  if (name === 'help') {
    write(io.stdout, HELP);
    return EXIT_CODES.ok;
  }
  if (!(CLI_COMMANDS as readonly string[]).includes(name)) {
    throw new UsageError(`unknown command "${name}" (commands: ${CLI_COMMANDS.join(', ')})`);
  }
  const command = name as Command;
  const allowed = new Set<string>([...GLOBAL_OPTIONS, ...COMMAND_OPTIONS[command]]);
  for (const option of Object.keys(values)) {
    if (!allowed.has(option)) throw new UsageError(`${command} does not take --${option}`);
  }
  const wanted = TAKES_SESSION_ID.has(command) ? 1 : 0;
  if (args.length < wanted) {
    const usage = command === 'discard' ? '<id> <turn-id>...' : '<id>';
    throw new UsageError(`${command} needs a session id: ctx ${command} ${usage}`);
  }
  if (command === 'discard') {
    if (args.length < 2) {
      throw new UsageError(
        `discard needs the ids of the turns to discard: ctx discard <id> <turn-id>... (ctx pending ${quoteArgument(args[0] ?? '')} lists them)`,
      );
    }
  } else if (args.length > wanted) {
    throw new UsageError(
      `${command} takes ${wanted === 1 ? 'one session id' : 'no arguments'}, got "${args.join(' ')}"`,
    );
  }
  return { command, args, values };
}

/**
 * Runs the `ctx` command line and returns its exit code (0 done, 1 failed, 2 bad command line).
 * Results go to `io.stdout`; an error is one line `ctx: <what went wrong>` on `io.stderr`, never a
 * stack trace (set `CTX_DEBUG=1` for the stack of an unexpected error). The repository it opens is
 * always closed, and an unreachable store fails within `--timeout`.
 *
 * @example
 * ```ts
 * const code = await runCli(['list', '--json'], {
 *   stdout: process.stdout,
 *   stderr: process.stderr,
 *   env: { CTX_STORE_URL: 'sqlite:./data/ctx.db' },
 * });
 * ```
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const env = io.env ?? process.env;
  let storeUrl: string | undefined;
  try {
    const prepared = prepare(argv, io);
    if (typeof prepared === 'number') return prepared;
    const { command, args, values } = prepared;
    storeUrl = values.store ?? (env.CTX_STORE_URL?.trim() || undefined);
    if (storeUrl === undefined) {
      throw new UsageError(
        'no store: pass --store <url> or set CTX_STORE_URL (e.g. sqlite:./data/ctx.db)',
      );
    }
    const timeoutMs =
      values.timeout === undefined
        ? DEFAULT_TIMEOUT_MS
        : parseInteger('timeout', values.timeout, 1, 600_000);
    if (args[0] !== undefined) assertValidSessionId(args[0]);
    if (values.user !== undefined && values.user.trim() === '') {
      throw new UsageError('--user needs a user id');
    }
    const store = parseStoreUrl(storeUrl);
    return await runCommand(command, args, { values, storeUrl, store, timeoutMs, io });
  } catch (error) {
    return report(error, io, env, storeUrl);
  }
}

function report(
  error: unknown,
  io: CliIo,
  env: Record<string, string | undefined>,
  storeUrl: string | undefined,
): number {
  const line = (message: string) => write(io.stderr, `ctx: ${oneLine(message, storeUrl)}`);
  if (error instanceof UsageError) {
    line(`${error.message} (see ctx --help)`);
    return EXIT_CODES.usage;
  }
  if (error instanceof CommandFailure) {
    line(error.message);
    return error.exitCode;
  }
  if (ContextError.isInstance(error)) {
    switch (error.code) {
      case 'INVALID_INPUT':
        line(error.message);
        return EXIT_CODES.usage;
      case 'STORAGE_UNAVAILABLE':
        line(`store unreachable (${redactStoreUrl(storeUrl ?? '')}): ${error.message}`);
        return EXIT_CODES.failure;
      case 'SCHEMA_MISMATCH':
        line(`${error.message} (to create or upgrade the tables: ctx migrate)`);
        return EXIT_CODES.failure;
      default:
        line(error.message);
        return EXIT_CODES.failure;
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  line(`unexpected error: ${message}${env.CTX_DEBUG ? '' : ' (set CTX_DEBUG=1 for details)'}`);
  if (env.CTX_DEBUG && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
  return EXIT_CODES.failure;
}
