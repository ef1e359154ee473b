import { z } from 'zod';
import {
  ContextError,
  ExtractionError,
  isRetryableError,
  OwnershipError,
  StorageError,
  ValidationError,
  VersionConflictError,
} from './errors.js';
import type { ContextExtractor, TokenUsage } from './extraction.js';
import {
  applyUpdatePolicy,
  hasConversationalContent,
  messagesForExtraction,
  UPDATE_MODES,
  type UpdateMode,
} from './policy.js';
import {
  formatSessionContext,
  injectSessionContext,
  MIN_RENDER_CHARS,
  type RenderOptions,
  renderSessionContext,
} from './render.js';
import type { ContextRepository, ListPage, ListQuery } from './repository.js';
import {
  ContextDraftSchema,
  LIMITS,
  type Message,
  MessageSchema,
  parseOrThrow,
  type SessionContext,
  SessionIdSchema,
  toValidationIssues,
  UserIdSchema,
} from './schema.js';

/** Background-mode retry and carry-over settings. */
export interface BackgroundConfig {
  /**
   * Attempts per background update (the first included) before its messages are carried over to
   * the session's next update. Only retryable failures (outages, rate limits, bad samples) are
   * retried. @default 5
   */
  maxAttempts?: number;
  /** Delay before the first retry; doubles each time. @default 500 */
  initialDelayMs?: number;
  /** Upper bound of the retry delay (a provider's `retry-after` is honoured up to it). @default 30000 */
  maxDelayMs?: number;
  /**
   * Messages kept per session for background updates: turns queued behind a running update, and
   * turns carried over after failed ones. The oldest are dropped first, with a `messages-dropped`
   * event. @default 200
   */
  maxCarriedMessages?: number;
}

/** Configuration of a {@link SessionContextStore}. Invalid values are rejected with `INVALID_CONFIG`. */
export interface SessionContextConfig {
  /** Planning mode: also maintain goal, plan and completed steps. @default false */
  enablePlanning?: boolean;
  /** Extra instructions for the extractor (domain hints, what to keep). */
  instructions?: string;
  /**
   * When to extract. `always` (the only mode today; the option is reserved for others): after every
   * turn with new user or assistant content. @default 'always'
   */
  mode?: UpdateMode;
  /** Re-read, re-extract and retry this many times after a version conflict. @default 3 */
  maxConflictRetries?: number;
  /** Time limit of one extraction in milliseconds; 0 disables it. @default 120000 */
  extractionTimeoutMs?: number;
  /** Default options of `render` and `buildSystemPrompt` (e.g. a character budget). */
  render?: RenderOptions;
  /** Background-mode retries and carry-over. */
  background?: BackgroundConfig;
  /**
   * Observability hook, called synchronously for every event. A handler that throws is reported on
   * `console.error` and otherwise ignored.
   */
  onEvent?: (event: SessionContextEvent) => void;
  /** Clock for timestamps. @default () => new Date() */
  now?: () => Date;
}

/** Input of {@link SessionContextStore.update} and {@link SessionContextStore.schedule}. */
export interface UpdateInput {
  sessionId: string;
  /** The caller's user. Becomes the owner of a new session; must match the owner of an existing one. */
  userId?: string;
  /** The turn's messages, oldest first: only what is new since the last update. */
  messages: Message[];
}

/** What {@link SessionContextStore.update} did. */
export interface UpdateResult {
  /** The stored snapshot after the call (unchanged when skipped), or null when there is none. */
  context: SessionContext | null;
  /** Whether a new version was written. */
  updated: boolean;
  /** Why nothing was written, when `updated` is false. */
  skipped?: 'no-conversational-content';
  /** Tokens the extraction(s) of this call consumed, summed over conflict retries. */
  usage?: TokenUsage;
  /** How many version conflicts were retried. */
  conflictRetries: number;
}

/** Events reported through `onEvent`. */
export type SessionContextEvent =
  | {
      type: 'updated';
      sessionId: string;
      version: number;
      durationMs: number;
      usage?: TokenUsage;
      conflictRetries: number;
      messageCount: number;
      background: boolean;
    }
  | { type: 'skipped'; sessionId: string; reason: 'no-conversational-content'; background: boolean }
  | {
      type: 'conflict-retried';
      sessionId: string;
      attempt: number;
      expectedVersion: number | null;
      currentVersion: number | null;
    }
  | {
      type: 'failed';
      sessionId: string;
      error: ContextError;
      durationMs: number;
      background: boolean;
      /** Attempt number of a background update (1-based); 1 for direct updates. */
      attempt: number;
      /** A background update will be tried again after `retryInMs`. */
      willRetry: boolean;
      retryInMs?: number;
      /** Messages kept for the session's next update after this failure. */
      carriedMessages: number;
    }
  | {
      type: 'messages-dropped';
      sessionId: string;
      count: number;
      reason: 'carry-limit' | 'rejected';
    };

const configSchema = z
  .object({
    enablePlanning: z.boolean().optional(),
    instructions: z.string().max(20_000).optional(),
    mode: z.enum(UPDATE_MODES).optional(),
    maxConflictRetries: z.number().int().min(0).max(100).optional(),
    extractionTimeoutMs: z.number().int().min(0).optional(),
    render: z
      .object({ maxChars: z.number().int().min(MIN_RENDER_CHARS).optional() })
      .strict()
      .optional(),
    background: z
      .object({
        maxAttempts: z.number().int().min(1).max(100).optional(),
        initialDelayMs: z.number().int().min(0).optional(),
        maxDelayMs: z.number().int().min(0).optional(),
        maxCarriedMessages: z.number().int().min(1).max(LIMITS.messagesMaxCount).optional(),
      })
      .strict()
      .optional(),
    onEvent: z.function().optional(),
    now: z.function().optional(),
  })
  .strict();

const updateInputSchema = z.object({
  sessionId: SessionIdSchema,
  userId: UserIdSchema.optional(),
  messages: z.array(MessageSchema).max(LIMITS.messagesMaxCount),
});

const userOptionSchema = z.object({ userId: UserIdSchema.optional() }).optional();

interface PendingTurn {
  userId: string | undefined;
  messages: Message[];
}

interface SessionQueue {
  pending: PendingTurn[];
  running: boolean;
  /** Grows when the session is deleted: turns taken before that are dropped, not written. */
  generation: number;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });

function toContextError(error: unknown, fallback: 'extraction' | 'storage'): ContextError {
  if (ContextError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return fallback === 'extraction'
    ? new ExtractionError('unknown', `The extractor failed: ${message}`, { cause: error })
    : new StorageError('STORAGE_ERROR', `The repository failed: ${message}`, { cause: error });
}

/**
 * The orchestrator: keeps one session context per conversation up to date and renders it for the
 * next system prompt.
 *
 * `update` reads the stored snapshot, asks the policy whether the turn is worth an extraction, has
 * the extractor write the next snapshot from the previous one plus only the new messages, applies
 * the policy's invariants and saves with compare-and-set. A version conflict (another writer got
 * there first) re-reads, re-extracts and retries, a bounded number of times. Any failure leaves the
 * stored snapshot untouched and surfaces a typed {@link ContextError}.
 *
 * Updates of one session are serialized inside a store instance; across instances and processes
 * the repository's compare-and-set keeps them consistent. `schedule` runs an update in the
 * background (the agent's reply is not delayed), retries retryable failures with backoff and
 * carries the messages of a finally failed update into the session's next update; `flush` waits
 * for that work.
 *
 * @example
 * ```ts
 * const store = new SessionContextStore({
 *   repository: createMemoryRepository(),
 *   extractor: createOpenAIExtractor({ model: 'gpt-4.1-mini' }), // @ctx/model-openai
 *   config: { enablePlanning: true },
 * });
 * await store.update({ sessionId: 's1', userId: 'u1', messages: [{ role: 'user', content: 'Help me deploy…' }] });
 * const system = await store.buildSystemPrompt('s1', 'You are a helpful assistant.', { userId: 'u1' });
 * ```
 */
export class SessionContextStore {
  readonly repository: ContextRepository;
  readonly extractor: ContextExtractor;
  readonly config: Readonly<SessionContextConfig>;

  readonly #planning: boolean;
  readonly #maxConflictRetries: number;
  readonly #timeoutMs: number;
  readonly #background: Required<BackgroundConfig>;
  readonly #now: () => Date;
  readonly #locks = new Map<string, Promise<void>>();
  readonly #queues = new Map<string, SessionQueue>();
  readonly #carried = new Map<string, PendingTurn[]>();
  readonly #idle = new Set<() => void>();
  #flushing = new AbortController();

  constructor(options: {
    repository: ContextRepository;
    extractor: ContextExtractor;
    config?: SessionContextConfig;
  }) {
    const issues = [];
    if (
      typeof options?.repository?.get !== 'function' ||
      typeof options.repository.save !== 'function'
    ) {
      issues.push({
        path: 'repository',
        message: 'must be a ContextRepository (get, save, delete, list, close)',
      });
    }
    if (typeof options?.extractor?.extract !== 'function') {
      issues.push({ path: 'extractor', message: 'must be a ContextExtractor (extract)' });
    }
    if (issues.length > 0) {
      throw new ValidationError(
        'INVALID_CONFIG',
        `Invalid SessionContextStore options: ${issues.map((issue) => `${issue.path} ${issue.message}`).join('; ')}`,
        { issues },
      );
    }
    const config = parseOrThrow(
      configSchema,
      options.config ?? {},
      'session context config',
      'INVALID_CONFIG',
    );
    const background = {
      maxAttempts: config.background?.maxAttempts ?? 5,
      initialDelayMs: config.background?.initialDelayMs ?? 500,
      maxDelayMs: config.background?.maxDelayMs ?? 30_000,
      maxCarriedMessages: config.background?.maxCarriedMessages ?? 200,
    };
    if (background.maxDelayMs < background.initialDelayMs) {
      throw new ValidationError(
        'INVALID_CONFIG',
        'Invalid session context config: background.maxDelayMs must be at least background.initialDelayMs',
        { issues: [{ path: 'background.maxDelayMs', message: 'less than initialDelayMs' }] },
      );
    }
    this.repository = options.repository;
    this.extractor = options.extractor;
    this.config = Object.freeze({ ...(options.config ?? {}) });
    this.#planning = config.enablePlanning ?? false;
    this.#maxConflictRetries = config.maxConflictRetries ?? 3;
    this.#timeoutMs = config.extractionTimeoutMs ?? 120_000;
    this.#background = background;
    this.#now = options.config?.now ?? (() => new Date());
  }

  /**
   * Updates the session's context from one turn and waits for it. Skips (without a model call)
   * turns with no user or assistant content. Throws a {@link ContextError} on failure — the stored
   * snapshot is then unchanged: `INVALID_INPUT`, `OWNERSHIP_MISMATCH`, `EXTRACTION_FAILED`,
   * `VERSION_CONFLICT` (retries exhausted), `STORAGE_UNAVAILABLE`, `STORAGE_ERROR`.
   *
   * Messages carried over from failed background updates of this session are included first.
   */
  async update(input: UpdateInput, options?: { signal?: AbortSignal }): Promise<UpdateResult> {
    const parsed = parseOrThrow(updateInputSchema, input, 'update input');
    return this.#exclusive(parsed.sessionId, async () => {
      const carried = this.#carriedFor(parsed.sessionId, parsed.userId);
      const messages = [...carried.flatMap((turn) => turn.messages), ...parsed.messages];
      const started = performance.now();
      try {
        const result = await this.#run(
          parsed.sessionId,
          parsed.userId,
          messages,
          false,
          options?.signal,
        );
        this.#dropCarried(parsed.sessionId, carried);
        return result;
      } catch (error) {
        const failure = toContextError(error, 'storage');
        // Turns this caller may never write to the session can never be applied: let them go.
        const refused = failure.code === 'OWNERSHIP_MISMATCH' ? carried : [];
        if (refused.length > 0) this.#dropCarried(parsed.sessionId, refused);
        this.#emit({
          type: 'failed',
          sessionId: parsed.sessionId,
          error: failure,
          durationMs: performance.now() - started,
          background: false,
          attempt: 1,
          willRetry: false,
          carriedMessages: this.#countCarried(parsed.sessionId),
        });
        if (refused.length > 0) {
          this.#emit({
            type: 'messages-dropped',
            sessionId: parsed.sessionId,
            count: refused.reduce((count, turn) => count + turn.messages.length, 0),
            reason: 'rejected',
          });
        }
        throw failure;
      }
    });
  }

  /**
   * Schedules an update in the background and returns at once, so the agent's reply is not
   * delayed. Input is validated now (`INVALID_INPUT` is thrown synchronously). Turns scheduled for a
   * session while one of its updates runs are merged into one extraction. Retryable failures are
   * retried with exponential backoff; when the attempts run out, the messages are carried into the
   * session's next update. Outcomes are reported through `onEvent`; call {@link flush} before
   * shutting down.
   */
  schedule(input: UpdateInput): void {
    const parsed = parseOrThrow(updateInputSchema, input, 'update input');
    let queue = this.#queues.get(parsed.sessionId);
    if (!queue) {
      queue = { pending: [], running: false, generation: 0 };
      this.#queues.set(parsed.sessionId, queue);
    }
    queue.pending.push({ userId: parsed.userId, messages: parsed.messages });
    this.#trimPending(parsed.sessionId, queue.pending);
    if (!queue.running) {
      queue.running = true;
      void this.#drain(parsed.sessionId, queue);
    }
  }

  /**
   * Resolves when every scheduled update has finished (succeeded, or failed with its messages
   * carried over). Pending retry delays are cut short: flushing retries at once.
   */
  async flush(): Promise<void> {
    this.#flushing.abort();
    while (this.#queues.size > 0) {
      await new Promise<void>((resolve) => this.#idle.add(resolve));
    }
    this.#flushing = new AbortController();
  }

  /** Number of messages carried over from failed background updates, per session. */
  carriedMessages(): Map<string, number> {
    return new Map(
      [...this.#carried.keys()].map((sessionId) => [sessionId, this.#countCarried(sessionId)]),
    );
  }

  /** The session's snapshot, or null. `OWNERSHIP_MISMATCH` when `userId` is not its owner. */
  async get(sessionId: string, options?: { userId?: string }): Promise<SessionContext | null> {
    parseOrThrow(SessionIdSchema, sessionId, 'session id');
    const { userId } = parseOrThrow(userOptionSchema, options, 'options') ?? {};
    const context = await this.#read(sessionId);
    this.#assertOwner(context, userId, sessionId);
    return context;
  }

  /** The block for the system prompt ("" when there is nothing yet). See {@link renderSessionContext}. */
  async render(sessionId: string, options?: { userId?: string } & RenderOptions): Promise<string> {
    const context = await this.get(sessionId, { userId: options?.userId });
    return renderSessionContext(context, this.#renderOptions(options));
  }

  /** `basePrompt` with the session's block appended (unchanged when there is nothing yet). */
  async buildSystemPrompt(
    sessionId: string,
    basePrompt: string,
    options?: { userId?: string } & RenderOptions,
  ): Promise<string> {
    const context = await this.get(sessionId, { userId: options?.userId });
    return injectSessionContext(basePrompt, context, this.#renderOptions(options));
  }

  /**
   * Human-readable debug output of one session (identity, version, timestamps, every field, plan
   * steps checked when done). Written with `options.log` (default `console.log`) and returned.
   */
  async print(
    sessionId: string,
    options?: { userId?: string; log?: (text: string) => void },
  ): Promise<string> {
    const text = formatSessionContext(await this.get(sessionId, { userId: options?.userId }));
    (options?.log ?? console.log)(text);
    return text;
  }

  /** Deletes the session; `true` when it existed. `OWNERSHIP_MISMATCH` when `userId` is not its owner. */
  async delete(sessionId: string, options?: { userId?: string }): Promise<boolean> {
    parseOrThrow(SessionIdSchema, sessionId, 'session id');
    const { userId } = parseOrThrow(userOptionSchema, options, 'options') ?? {};
    return this.#exclusive(sessionId, async () => {
      let deleted: boolean;
      try {
        // The owner check and the delete are one atomic operation in the repository: checking
        // first and deleting by id would delete a session another user re-created in between.
        deleted = await this.repository.delete(sessionId, userId === undefined ? {} : { userId });
      } catch (error) {
        throw toContextError(error, 'storage');
      }
      // Scheduled turns of a deleted session must not bring it back.
      this.#carried.delete(sessionId);
      const queue = this.#queues.get(sessionId);
      if (queue) {
        queue.pending.length = 0;
        queue.generation += 1;
      }
      return deleted;
    });
  }

  /** A page of sessions, most recently updated first; pass `userId` to list one user's sessions. */
  async list(query?: ListQuery): Promise<ListPage> {
    try {
      return await this.repository.list(query);
    } catch (error) {
      throw toContextError(error, 'storage');
    }
  }

  #renderOptions(options?: RenderOptions): RenderOptions {
    return {
      ...this.config.render,
      ...(options?.maxChars === undefined ? {} : { maxChars: options.maxChars }),
    };
  }

  async #read(sessionId: string): Promise<SessionContext | null> {
    try {
      return await this.repository.get(sessionId);
    } catch (error) {
      throw toContextError(error, 'storage');
    }
  }

  #assertOwner(context: SessionContext | null, userId: string | undefined, sessionId: string) {
    if (context && userId !== undefined && context.userId !== null && context.userId !== userId) {
      throw new OwnershipError(sessionId);
    }
  }

  async #run(
    sessionId: string,
    userId: string | undefined,
    messages: Message[],
    background: boolean,
    signal: AbortSignal | undefined,
  ): Promise<UpdateResult> {
    const started = performance.now();
    if (!hasConversationalContent(messages)) {
      const context = await this.#read(sessionId);
      this.#assertOwner(context, userId, sessionId);
      this.#emit({ type: 'skipped', sessionId, reason: 'no-conversational-content', background });
      return { context, updated: false, skipped: 'no-conversational-content', conflictRetries: 0 };
    }
    const extractionMessages = messagesForExtraction(messages);
    let usage: TokenUsage | undefined;
    for (let attempt = 0; ; attempt += 1) {
      const previous = await this.#read(sessionId);
      this.#assertOwner(previous, userId, sessionId);
      const result = await this.#extract(previous, extractionMessages, signal);
      if (result.usage) {
        usage = {
          inputTokens: (usage?.inputTokens ?? 0) + result.usage.inputTokens,
          outputTokens: (usage?.outputTokens ?? 0) + result.usage.outputTokens,
        };
      }
      const content = applyUpdatePolicy(previous, result.draft, { planning: this.#planning });
      const now = this.#now();
      const snapshot: SessionContext = {
        sessionId,
        userId: previous ? previous.userId : (userId ?? null),
        ...content,
        createdAt: previous?.createdAt ?? now,
        // Never move backwards, even when instances' clocks disagree.
        updatedAt: previous && previous.updatedAt > now ? previous.updatedAt : now,
        version: (previous?.version ?? 0) + 1,
      };
      try {
        const context = await this.repository.save(snapshot, {
          expectedVersion: previous?.version ?? null,
        });
        this.#emit({
          type: 'updated',
          sessionId,
          version: context.version,
          durationMs: performance.now() - started,
          ...(usage ? { usage } : {}),
          conflictRetries: attempt,
          messageCount: extractionMessages.length,
          background,
        });
        return { context, updated: true, ...(usage ? { usage } : {}), conflictRetries: attempt };
      } catch (error) {
        if (!VersionConflictError.isInstance(error) || attempt >= this.#maxConflictRetries) {
          throw toContextError(error, 'storage');
        }
        this.#emit({
          type: 'conflict-retried',
          sessionId,
          attempt: attempt + 1,
          expectedVersion: error.expectedVersion,
          currentVersion: error.currentVersion,
        });
        // Writers that collided would collide again if they retried in lockstep: wait a random,
        // growing moment (at most 100 ms) first.
        await new Promise((resolve) =>
          setTimeout(resolve, Math.random() * Math.min(100, 2 ** (attempt + 1))),
        );
      }
    }
  }

  async #extract(
    previous: SessionContext | null,
    messages: Message[],
    callerSignal: AbortSignal | undefined,
  ) {
    const timeout = this.#timeoutMs > 0 ? AbortSignal.timeout(this.#timeoutMs) : undefined;
    const signals = [callerSignal, timeout].filter((signal): signal is AbortSignal => !!signal);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    try {
      const result = await this.extractor.extract(
        {
          previous,
          messages,
          planning: this.#planning,
          ...(this.config.instructions ? { instructions: this.config.instructions } : {}),
        },
        signal ? { signal } : {},
      );
      const draft = ContextDraftSchema.safeParse(result?.draft);
      if (!draft.success) {
        throw new ExtractionError(
          'schema_mismatch',
          `The extractor returned an invalid draft: ${toValidationIssues(draft.error)
            .slice(0, 5)
            .map((issue) => `${issue.path}: ${issue.message}`)
            .join('; ')}`,
          { cause: draft.error },
        );
      }
      return { draft: draft.data, usage: result.usage };
    } catch (error) {
      if (timeout?.aborted && !callerSignal?.aborted) {
        throw new ExtractionError(
          'timeout',
          `The extraction took longer than ${this.#timeoutMs} ms`,
          {
            cause: error,
          },
        );
      }
      if (callerSignal?.aborted && !ContextError.isInstance(error)) {
        throw new ExtractionError('aborted', 'The extraction was aborted', { cause: error });
      }
      throw toContextError(error, 'extraction');
    }
  }

  async #drain(sessionId: string, queue: SessionQueue): Promise<void> {
    try {
      while (queue.pending.length > 0) {
        const first = queue.pending[0] as PendingTurn;
        const batchSize = queue.pending.findIndex((turn) => turn.userId !== first.userId);
        const batch = queue.pending.splice(0, batchSize === -1 ? queue.pending.length : batchSize);
        const generation = queue.generation;
        await this.#runWithRetries(
          sessionId,
          first.userId,
          batch,
          () => queue.generation !== generation,
        );
      }
    } finally {
      queue.running = false;
      this.#queues.delete(sessionId);
      if (this.#queues.size === 0) {
        for (const resolve of this.#idle) resolve();
        this.#idle.clear();
      }
    }
  }

  // The session's lock is held for one attempt at a time, never across a backoff, so a direct
  // update or delete of the session does not wait for a model outage to end. Between attempts the
  // turns wait in the carry-over, where a direct update by the same caller picks them up.
  async #runWithRetries(
    sessionId: string,
    userId: string | undefined,
    batch: PendingTurn[],
    deleted: () => boolean,
  ): Promise<void> {
    const started = performance.now();
    let fresh = batch;
    for (let attempt = 1; ; attempt += 1) {
      const outcome = await this.#exclusive(sessionId, async () => {
        if (deleted()) fresh = [];
        const carried = this.#carriedFor(sessionId, userId);
        this.#dropCarried(sessionId, carried);
        const turns = [...carried, ...fresh];
        fresh = [];
        if (turns.length === 0) return { turns, failure: undefined };
        try {
          await this.#run(
            sessionId,
            userId,
            turns.flatMap((turn) => turn.messages),
            true,
            undefined,
          );
          return { turns, failure: undefined };
        } catch (error) {
          return { turns, failure: toContextError(error, 'storage') };
        }
      });
      const { turns, failure } = outcome;
      if (!failure) return;
      const willRetry = isRetryableError(failure) && attempt < this.#background.maxAttempts;
      const rejected = failure.code === 'OWNERSHIP_MISMATCH' || failure.code === 'INVALID_INPUT';
      let retryInMs: number | undefined;
      if (willRetry) {
        const backoff = this.#background.initialDelayMs * 2 ** (attempt - 1);
        const hinted = ExtractionError.isInstance(failure) ? (failure.retryAfterMs ?? 0) : 0;
        retryInMs = Math.min(this.#background.maxDelayMs, Math.max(backoff, hinted));
      }
      if (!rejected) this.#carry(sessionId, turns);
      const carriedMessages = this.#countCarried(sessionId);
      this.#emit({
        type: 'failed',
        sessionId,
        error: failure,
        durationMs: performance.now() - started,
        background: true,
        attempt,
        willRetry,
        ...(retryInMs === undefined ? {} : { retryInMs }),
        carriedMessages,
      });
      if (!willRetry) {
        if (rejected) {
          const count = turns.reduce((total, turn) => total + turn.messages.length, 0);
          this.#emit({ type: 'messages-dropped', sessionId, count, reason: 'rejected' });
        } else if (!this.config.onEvent) {
          console.warn(
            `[ctx] background update of session "${sessionId}" failed (${failure.code}): ${failure.message}; ${carriedMessages} message(s) carried into its next update`,
          );
        }
        return;
      }
      await sleep(retryInMs ?? 0, this.#flushing.signal);
    }
  }

  #countCarried(sessionId: string): number {
    return (this.#carried.get(sessionId) ?? []).reduce(
      (count, turn) => count + turn.messages.length,
      0,
    );
  }

  // Carried turns only ever join an update by the same caller: another user's messages must not
  // reach a session they do not own (for instance one created after their update failed).
  #carriedFor(sessionId: string, userId: string | undefined): PendingTurn[] {
    return (this.#carried.get(sessionId) ?? []).filter((turn) => turn.userId === userId);
  }

  #dropCarried(sessionId: string, turns: PendingTurn[]) {
    const rest = (this.#carried.get(sessionId) ?? []).filter((turn) => !turns.includes(turn));
    if (rest.length > 0) this.#carried.set(sessionId, rest);
    else this.#carried.delete(sessionId);
  }

  #carry(sessionId: string, turns: PendingTurn[]) {
    const carried = [...turns, ...(this.#carried.get(sessionId) ?? [])];
    this.#trimPending(sessionId, carried);
    this.#carried.set(sessionId, carried);
  }

  // Keeps at most maxCarriedMessages messages, dropping the oldest first.
  #trimPending(sessionId: string, turns: PendingTurn[]) {
    let total = turns.reduce((count, turn) => count + turn.messages.length, 0);
    let dropped = 0;
    while (total > this.#background.maxCarriedMessages && turns.length > 0) {
      const oldest = turns[0] as PendingTurn;
      const excess = total - this.#background.maxCarriedMessages;
      const removed = oldest.messages.splice(0, excess).length;
      if (oldest.messages.length === 0) turns.shift();
      total -= removed;
      dropped += removed;
    }
    if (dropped > 0) {
      this.#emit({ type: 'messages-dropped', sessionId, count: dropped, reason: 'carry-limit' });
    }
  }

  #exclusive<T>(sessionId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(sessionId) ?? Promise.resolve();
    const result = previous.then(task);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.#locks.set(sessionId, settled);
    void settled.then(() => {
      if (this.#locks.get(sessionId) === settled) this.#locks.delete(sessionId);
    });
    return result;
  }

  #emit(event: SessionContextEvent) {
    if (!this.config.onEvent) return;
    try {
      this.config.onEvent(event);
    } catch (error) {
      console.error('[ctx] onEvent handler threw:', error);
    }
  }
}
