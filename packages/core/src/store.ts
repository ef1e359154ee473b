import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { type BackgroundFailure, FoldScheduler } from './background.js';
import {
  BackpressureError,
  ContextError,
  ExtractionError,
  OwnershipError,
  StorageError,
  ValidationError,
} from './errors.js';
import type { ContextExtractor, TokenUsage } from './extraction.js';
import {
  type CompiledFields,
  compileFields,
  type FieldsSchema,
  type FieldValues,
  readFields,
} from './fields.js';
import {
  discardTurns,
  type FoldEvent,
  type FoldOutcome,
  type FoldSettings,
  foldSession,
  type TurnLogRepository,
  toContextError,
  turnIdsOfFailure,
} from './fold.js';
import { hasConversationalContent } from './policy.js';
import {
  formatSessionContext,
  injectSessionContext,
  type RenderOptions,
  renderSessionContext,
} from './render.js';
import type { ContextRepository, ListQuery } from './repository.js';
import { parseOrThrow, type SessionContext, SessionIdSchema } from './schema.js';
import {
  configSchema,
  discardTurnIdsSchema,
  drainOptionsSchema,
  type ScheduleOptions,
  type SessionContextConfig,
  type SessionContextEvent,
  scheduleOptionsSchema,
  type UpdateInput,
  type UpdateResult,
  updateInputSchema,
  userOptionSchema,
} from './store-options.js';
import type { RecordedTurn } from './turn-log.js';

function hasTurnLog(repository: ContextRepository): repository is TurnLogRepository {
  return (
    repository.capabilities?.turnLog === true &&
    typeof repository.recordTurn === 'function' &&
    typeof repository.pendingTurns === 'function' &&
    typeof repository.acquireLease === 'function' &&
    typeof repository.releaseLease === 'function' &&
    typeof repository.sessionsWithPendingTurns === 'function'
  );
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The typed `fields` of a store's snapshots: `FieldValues<S>` with a fields schema, else untyped. */
export type FieldsOf<S extends FieldsSchema | undefined> = S extends FieldsSchema
  ? FieldValues<S>
  : undefined;

/** Options of a {@link SessionContextStore}. */
export interface SessionContextStoreOptions<S extends FieldsSchema | undefined = undefined> {
  repository: ContextRepository;
  extractor: ContextExtractor;
  config?: SessionContextConfig;
  /**
   * Custom fields: a zod 4 object schema, each field with a `.describe()` that tells the model what
   * it holds, and optionally `.meta({ title: 'Label', ctx: { clearable: true } })`. Supported field
   * types: string, number, integer, boolean, enum of strings, an array of one of those (nullable or
   * optional allowed). The fields are extracted with the built-in ones, validated, stored in the
   * snapshot's `fields` and rendered after the built-in sections. A field keeps its value when the
   * model omits it or returns null, unless it is `clearable`. Invalid schemas are refused with
   * `INVALID_CONFIG`; the repository must declare `capabilities.fields`.
   *
   * @example
   * ```ts
   * fields: z.object({
   *   platform: z.enum(['fly', 'render', 'aws']).describe('The platform the app is deployed to')
   *     .meta({ title: 'Target platform' }),
   *   orderNumber: z.string().describe('The order the support chat is about'),
   * })
   * ```
   */
  fields?: S;
}

/** `{ turnIds }` of a failed extraction, for the `failed` event; nothing for other failures. */
function failedTurnIds(error: unknown): { turnIds?: string[] } {
  const turnIds = turnIdsOfFailure(error);
  return turnIds ? { turnIds } : {};
}

/**
 * The orchestrator: keeps one session context per conversation up to date and renders it for the
 * next system prompt.
 *
 * Every turn is first **recorded** in the session's turn log, in the same backend as the snapshot;
 * a **fold** then reads the snapshot and the pending turns, has the extractor write the next
 * snapshot from the previous one plus only those turns, applies the policy's invariants and saves
 * it together with the folded turns in one compare-and-set. So a recorded turn is never lost (a
 * crash leaves it in the log for any instance to fold) and never folded twice (recording a turn id
 * twice is a no-op, and folding is part of the compare-and-set). A lease in the backend lets one
 * folder work on a session at a time, so concurrent turns share extractions instead of racing.
 *
 * `update` records and waits until the turn is folded (by this call or by another folder);
 * `schedule` returns once the turn is recorded and folds in the background; `drain` folds what
 * crashed or idle instances left; `flush` waits for background folds; `close` flushes and refuses
 * further calls. Every failure surfaces a typed {@link ContextError}; the stored snapshot is never
 * partly written.
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
export class SessionContextStore<S extends FieldsSchema | undefined = undefined> {
  readonly repository: ContextRepository;
  readonly extractor: ContextExtractor;
  readonly config: Readonly<SessionContextConfig>;
  /**
   * The custom fields schema given as the `fields` option, if any (typed loosely, so that a store
   * with fields goes wherever a `SessionContextStore` is taken; `get()` carries the typing).
   */
  readonly fields: FieldsSchema | undefined;
  readonly #fields: CompiledFields | undefined;

  readonly #log: TurnLogRepository;
  readonly #fold: Omit<FoldSettings, 'emit'>;
  readonly #waitTimeoutMs: number;
  readonly #scheduler: FoldScheduler;
  readonly #backgroundDelays: { initialDelayMs: number; maxDelayMs: number };
  /** Sessions whose folds failed in a drain, and when a drain may try them again. */
  readonly #drainBackoff = new Map<string, { failures: number; until: number }>();
  /** Identifies this store's folds in leases (each fold adds its own suffix). */
  readonly #instance = randomUUID();
  #closed = false;

  constructor(options: SessionContextStoreOptions<S>) {
    const issues = [];
    if (
      typeof options?.repository?.get !== 'function' ||
      typeof options.repository.save !== 'function'
    ) {
      issues.push({
        path: 'repository',
        message: 'must be a ContextRepository (get, save, delete, list, close)',
      });
    } else if (!hasTurnLog(options.repository)) {
      issues.push({
        path: 'repository',
        message:
          'must have the turn log (capabilities.turnLog with recordTurn, pendingTurns, acquireLease, releaseLease, sessionsWithPendingTurns): every built-in repository has it',
      });
    }
    if (typeof options?.extractor?.extract !== 'function') {
      issues.push({ path: 'extractor', message: 'must be a ContextExtractor (extract)' });
    }
    if (
      options?.fields !== undefined &&
      issues.length === 0 &&
      options.repository.capabilities?.fields !== true
    ) {
      issues.push({
        path: 'repository',
        message:
          'does not store custom fields (capabilities.fields): every built-in repository does',
      });
    }
    if (issues.length > 0) {
      throw new ValidationError(
        'INVALID_CONFIG',
        `Invalid SessionContextStore options: ${issues.map((issue) => `${issue.path} ${issue.message}`).join('; ')}`,
        { issues },
      );
    }
    const fields = options.fields === undefined ? undefined : compileFields(options.fields);
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
    };
    if (background.maxDelayMs < background.initialDelayMs) {
      throw new ValidationError(
        'INVALID_CONFIG',
        'Invalid session context config: background.maxDelayMs must be at least background.initialDelayMs',
        { issues: [{ path: 'background.maxDelayMs', message: 'less than initialDelayMs' }] },
      );
    }
    this.repository = options.repository;
    this.#log = options.repository as TurnLogRepository;
    this.extractor = options.extractor;
    this.config = Object.freeze({ ...(options.config ?? {}) });
    this.fields = options.fields;
    this.#fields = fields;
    const leaseTtlMs = config.fold?.leaseTtlMs ?? 10_000;
    this.#fold = {
      repository: this.#log,
      extractor: options.extractor,
      planning: config.enablePlanning ?? false,
      instructions: config.instructions,
      fields,
      maxConflictRetries: config.maxConflictRetries ?? 3,
      timeoutMs: config.extractionTimeoutMs ?? 120_000,
      maxInputChars: config.fold?.maxInputChars ?? 200_000,
      leaseTtlMs,
      now: options.config?.now ?? (() => new Date()),
    };
    this.#waitTimeoutMs = config.fold?.waitTimeoutMs ?? 300_000;
    this.#backgroundDelays = background;
    this.#scheduler = new FoldScheduler(
      async (sessionId) => ((await this.#foldNow(sessionId, true)) === 'busy' ? 'busy' : 'done'),
      { ...background, busyDelayMs: Math.ceil(leaseTtlMs / 2), maxBusyWaits: 10 },
      (failure) => this.#reportBackgroundFailure(failure),
    );
  }

  /**
   * Records the turn and waits until it is folded into the snapshot — by this call, or by another
   * folder that holds the session's lease (another instance, or a background fold), which it waits
   * for instead of extracting again. Skips (without recording or a model call) turns with no user
   * or assistant content. Older pending turns of the session are folded first.
   *
   * Throws a {@link ContextError}: `INVALID_INPUT`, `OWNERSHIP_MISMATCH`, `BACKPRESSURE`,
   * `EXTRACTION_FAILED`, `VERSION_CONFLICT` (retries exhausted), `STORAGE_UNAVAILABLE`,
   * `STORAGE_ERROR`, `CLOSED`. Once recorded, a turn stays in the log even when the fold fails: the
   * next update, background fold or drain folds it, and calling `update` again with the same
   * `turnId` never folds it twice.
   */
  async update(
    input: UpdateInput,
    options?: { signal?: AbortSignal },
  ): Promise<UpdateResult<SessionContext<FieldsOf<S>>>> {
    this.#assertOpen('update');
    const parsed = parseOrThrow(updateInputSchema, input, 'update input');
    const { sessionId, userId } = parsed;
    const started = performance.now();
    try {
      if (!hasConversationalContent(parsed.messages)) {
        const context = await this.#read(sessionId);
        this.#assertOwner(context, userId, sessionId);
        this.#emit({
          type: 'skipped',
          sessionId,
          reason: 'no-conversational-content',
          background: false,
        });
        return {
          context: this.#view(context),
          updated: false,
          skipped: 'no-conversational-content',
          conflictRetries: 0,
        };
      }
      const turnId = await this.#record(parsed);
      const result = await this.#waitForFold(sessionId, userId, turnId, options?.signal);
      return { ...result, context: this.#view(result.context) };
    } catch (error) {
      const failure = toContextError(error, 'storage');
      this.#emit({
        type: 'failed',
        sessionId,
        error: failure,
        durationMs: performance.now() - started,
        background: false,
        attempt: 1,
        willRetry: false,
        ...failedTurnIds(failure),
      });
      throw failure;
    }
  }

  /**
   * Records the turn durably and resolves with its id; the fold runs in the background, so the
   * agent's reply is not delayed. Rejects (with nothing recorded) on invalid input
   * (`INVALID_INPUT`), another user's session (`OWNERSHIP_MISMATCH`), a full log (`BACKPRESSURE`)
   * or a storage failure. Background folds retry retryable failures with backoff; outcomes are
   * reported through `onEvent`. Turns this process never folds (it crashed, or gave up) are folded
   * by the session's next update or by a `drain` on any instance. `foldDelayMs` lets the fold
   * wait for the session's next turns so that they share one extraction (see {@link ScheduleOptions}).
   */
  async schedule(
    input: UpdateInput,
    options?: ScheduleOptions,
  ): Promise<{ turnId: string; skipped?: 'no-conversational-content' }> {
    this.#assertOpen('schedule');
    const parsed = parseOrThrow(updateInputSchema, input, 'update input');
    const { foldDelayMs = 0 } =
      parseOrThrow(scheduleOptionsSchema, options, 'schedule options') ?? {};
    if (!hasConversationalContent(parsed.messages)) {
      this.#emit({
        type: 'skipped',
        sessionId: parsed.sessionId,
        reason: 'no-conversational-content',
        background: true,
      });
      return { turnId: parsed.turnId ?? randomUUID(), skipped: 'no-conversational-content' };
    }
    const turnId = await this.#record(parsed);
    this.#scheduler.kick(parsed.sessionId, foldDelayMs);
    return { turnId };
  }

  /**
   * Folds sessions whose pending turns were recorded at least `olderThanMs` ago and that no folder
   * holds: what crashed, redeployed or idle instances left. Runs them one after another, at most
   * `limit` sessions (default 100); a session that fails is reported through `onEvent`, skipped by
   * this store's drains for a growing delay (the `background` backoff), and the drain goes on.
   * Resolves with how many sessions and turns it folded.
   */
  async drain(options?: {
    olderThanMs?: number;
    limit?: number;
    signal?: AbortSignal;
  }): Promise<{ sessions: number; turns: number }> {
    this.#assertOpen('drain');
    const {
      olderThanMs = 0,
      limit = 100,
      signal,
    } = parseOrThrow(drainOptionsSchema, options, 'drain options') ?? {};
    const recordedBefore = new Date(this.#fold.now().getTime() - olderThanMs);
    let sessionIds: string[];
    try {
      sessionIds = await this.#log.sessionsWithPendingTurns({ recordedBefore, limit });
    } catch (error) {
      throw toContextError(error, 'storage');
    }
    let sessions = 0;
    let turns = 0;
    const now = performance.now();
    for (const sessionId of sessionIds) {
      if (signal?.aborted) break;
      // A session whose fold keeps failing (a refusal, a bad request) waits out a growing delay
      // instead of costing a model call on every drain.
      const backoff = this.#drainBackoff.get(sessionId);
      if (backoff && backoff.until > now) continue;
      const started = performance.now();
      try {
        const outcome = await this.#foldNow(sessionId, true, undefined, signal);
        this.#drainBackoff.delete(sessionId);
        if (outcome !== 'busy' && outcome.turns > 0) {
          sessions += 1;
          turns += outcome.turns;
        }
      } catch (error) {
        const failures = (backoff?.failures ?? 0) + 1;
        const retryInMs = Math.min(
          this.#backgroundDelays.maxDelayMs,
          this.#backgroundDelays.initialDelayMs * 2 ** (failures - 1),
        );
        this.#drainBackoff.set(sessionId, { failures, until: performance.now() + retryInMs });
        this.#emit({
          type: 'failed',
          sessionId,
          error: toContextError(error, 'storage'),
          durationMs: performance.now() - started,
          background: true,
          attempt: failures,
          willRetry: true,
          retryInMs,
          ...failedTurnIds(error),
        });
      }
    }
    return { sessions, turns };
  }

  /**
   * Resolves when every background fold of this store has finished (folded, or given up with its
   * turns left in the log). Pending retry delays are cut short: flushing retries at once.
   */
  async flush(): Promise<void> {
    await this.#scheduler.flush();
  }

  /**
   * Flushes, then refuses every later call with `CLOSED`. The repository and extractor were given
   * to the store, so their owner closes them.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
  }

  /** The session's snapshot, or null. `OWNERSHIP_MISMATCH` when `userId` is not its owner. */
  async get(
    sessionId: string,
    options?: { userId?: string },
  ): Promise<SessionContext<FieldsOf<S>> | null> {
    this.#assertOpen('get');
    parseOrThrow(SessionIdSchema, sessionId, 'session id');
    const { userId } = parseOrThrow(userOptionSchema, options, 'options') ?? {};
    const context = await this.#read(sessionId);
    this.#assertOwner(context, userId, sessionId);
    return this.#view(context);
  }

  /** The block for the system prompt ("" when there is nothing yet). See {@link renderSessionContext}. */
  async render(sessionId: string, options?: { userId?: string } & RenderOptions): Promise<string> {
    const context = (await this.get(
      sessionId,
      options?.userId === undefined ? {} : { userId: options.userId },
    )) as SessionContext | null;
    return renderSessionContext(context, this.#renderOptions(options));
  }

  /** `basePrompt` with the session's block appended (unchanged when there is nothing yet). */
  async buildSystemPrompt(
    sessionId: string,
    basePrompt: string,
    options?: { userId?: string } & RenderOptions,
  ): Promise<string> {
    const context = (await this.get(
      sessionId,
      options?.userId === undefined ? {} : { userId: options.userId },
    )) as SessionContext | null;
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
    const context = (await this.get(
      sessionId,
      options?.userId === undefined ? {} : { userId: options.userId },
    )) as SessionContext | null;
    const text = formatSessionContext(context, {
      fields: this.#fields?.schema ?? null,
    });
    (options?.log ?? console.log)(text);
    return text;
  }

  /**
   * Deletes the session and its pending turns; `true` when it existed. `OWNERSHIP_MISMATCH` when
   * `userId` is not its owner (checked and deleted in one atomic operation of the repository).
   */
  async delete(sessionId: string, options?: { userId?: string }): Promise<boolean> {
    this.#assertOpen('delete');
    parseOrThrow(SessionIdSchema, sessionId, 'session id');
    const { userId } = parseOrThrow(userOptionSchema, options, 'options') ?? {};
    try {
      return await this.repository.delete(sessionId, userId === undefined ? {} : { userId });
    } catch (error) {
      throw toContextError(error, 'storage');
    }
  }

  /** A page of sessions, most recently updated first; pass `userId` to list one user's sessions. */
  async list(
    query?: ListQuery,
  ): Promise<{ items: SessionContext<FieldsOf<S>>[]; nextCursor: string | null }> {
    this.#assertOpen('list');
    let page: Awaited<ReturnType<ContextRepository['list']>>;
    try {
      page = await this.repository.list(query);
    } catch (error) {
      throw toContextError(error, 'storage');
    }
    return {
      items: page.items.map((item) => this.#view(item) as SessionContext<FieldsOf<S>>),
      nextCursor: page.nextCursor,
    };
  }

  /** The session's pending (recorded, not yet folded) turns, oldest first. */
  async pendingTurns(sessionId: string) {
    this.#assertOpen('read pending turns');
    try {
      return await this.#log.pendingTurns(sessionId);
    } catch (error) {
      throw toContextError(error, 'storage');
    }
  }

  /**
   * Takes pending turns out of the session's log without folding them, and resolves with the
   * turns taken out (oldest first; none when none of them is pending). For a turn the model can
   * never fold — it refuses it, or keeps answering it with a custom-field value the schema does
   * not accept — which otherwise fails every fold of its session: the `failed` events and
   * `pendingTurns` show it. The session context will never hold these turns; keep what this
   * returns if they matter. With `userId`, only that user's turns of a session the user owns go
   * (`OWNERSHIP_MISMATCH` for another user's session). One compare-and-set: the snapshot is
   * saved as it is, one version on. Reported as a `turns-discarded` event.
   */
  async discardPendingTurns(
    sessionId: string,
    turnIds: string[],
    options?: { userId?: string },
  ): Promise<RecordedTurn[]> {
    this.#assertOpen('discard pending turns');
    parseOrThrow(SessionIdSchema, sessionId, 'session id');
    const ids = new Set(parseOrThrow(discardTurnIdsSchema, turnIds, 'turn ids'));
    const { userId } = parseOrThrow(userOptionSchema, options, 'options') ?? {};
    this.#assertOwner(await this.#read(sessionId), userId, sessionId);
    let turns: RecordedTurn[];
    try {
      turns = await discardTurns(
        this.#fold,
        sessionId,
        ids,
        (turn, previous) =>
          userId === undefined ||
          (turn.userId === userId && (previous?.userId ?? userId) === userId),
      );
    } catch (error) {
      throw toContextError(error, 'storage');
    }
    if (turns.length > 0) this.#emit({ type: 'turns-discarded', sessionId, turns });
    return turns;
  }

  // Records after checking ownership, so a turn that could never be applied is refused at once.
  // A full log is folded once (by this caller, or by whoever holds the lease) before giving up.
  async #record(input: z.infer<typeof updateInputSchema>): Promise<string> {
    const { sessionId, userId, messages } = input;
    this.#assertOwner(await this.#read(sessionId), userId, sessionId);
    const turnId = input.turnId ?? randomUUID();
    const turn = { turnId, userId: userId ?? null, messages };
    try {
      await this.#log.recordTurn(sessionId, turn);
    } catch (error) {
      if (!BackpressureError.isInstance(error)) throw toContextError(error, 'storage');
      await this.#foldNow(sessionId, false);
      await this.#log.recordTurn(sessionId, turn);
    }
    return turnId;
  }

  async #waitForFold(
    sessionId: string,
    userId: string | undefined,
    turnId: string,
    signal: AbortSignal | undefined,
  ): Promise<UpdateResult> {
    const deadline = performance.now() + this.#waitTimeoutMs;
    let usage: TokenUsage | undefined;
    let conflictRetries = 0;
    let folded: SessionContext | null | undefined;
    for (let wait = 10; ; wait = Math.min(250, wait * 2)) {
      const outcome = await this.#foldNow(sessionId, false, turnId, signal);
      if (outcome !== 'busy') {
        conflictRetries += outcome.conflictRetries;
        if (outcome.usage) {
          usage = {
            inputTokens: (usage?.inputTokens ?? 0) + outcome.usage.inputTokens,
            outputTokens: (usage?.outputTokens ?? 0) + outcome.usage.outputTokens,
          };
        }
        if (outcome.reached) {
          // This call's own fold saved the turn: the snapshot it wrote is the answer.
          folded = outcome.context;
          break;
        }
      }
      const pending = await this.#log.pendingTurns(sessionId);
      if (!pending.some((turn) => turn.turnId === turnId)) break;
      if (signal?.aborted) {
        throw new ExtractionError('aborted', 'The update was aborted; its turn stays recorded');
      }
      if (performance.now() > deadline) {
        throw new ExtractionError(
          'timeout',
          `Session "${sessionId}" is being folded by another folder that did not fold turn "${turnId}" within ${this.#waitTimeoutMs} ms; the turn stays recorded and will be folded`,
        );
      }
      await pause(wait);
    }
    const context = folded === undefined ? await this.#read(sessionId) : folded;
    // The turn left the log without a fold: the session was deleted meanwhile.
    if (context === null) {
      return { context, updated: false, skipped: 'session-deleted', turnId, conflictRetries };
    }
    // A turn let go because the session was re-created by another user meanwhile.
    this.#assertOwner(context, userId, sessionId);
    return {
      context,
      updated: true,
      turnId,
      ...(usage ? { usage } : {}),
      conflictRetries,
    };
  }

  #foldNow(
    sessionId: string,
    background: boolean,
    until?: string,
    signal?: AbortSignal,
  ): Promise<FoldOutcome> {
    return foldSession(
      { ...this.#fold, emit: (event) => this.#onFold(event, background) },
      sessionId,
      {
        holder: `${this.#instance}:${randomUUID()}`,
        ...(until === undefined ? {} : { until }),
        ...(signal ? { signal } : {}),
      },
    );
  }

  #onFold(event: FoldEvent, background: boolean) {
    switch (event.type) {
      case 'folded':
        this.#emit({
          type: 'updated',
          sessionId: event.sessionId,
          version: event.version,
          durationMs: event.durationMs,
          ...(event.usage ? { usage: event.usage } : {}),
          conflictRetries: event.conflictRetries,
          turns: event.turns,
          messageCount: event.messageCount,
          background,
        });
        return;
      case 'conflict-retried':
        this.#emit(event);
        return;
      case 'extraction-tolerated':
        this.#emit({ ...event, background });
        return;
      case 'rejected':
        this.#emit({
          type: 'messages-dropped',
          sessionId: event.sessionId,
          count: event.turns.reduce((count, turn) => count + turn.messages.length, 0),
          reason: 'rejected',
        });
        return;
    }
  }

  #reportBackgroundFailure(failure: BackgroundFailure) {
    this.#emit({ type: 'failed', background: true, ...failure, ...failedTurnIds(failure.error) });
    if (!failure.willRetry && !this.config.onEvent) {
      console.warn(
        `[ctx] background fold of session "${failure.sessionId}" failed (${failure.error.code}): ${failure.error.message}; its turns stay in the log for the next update or drain`,
      );
    }
  }

  #renderOptions(options?: RenderOptions): RenderOptions {
    return {
      ...this.config.render,
      ...(options?.maxChars === undefined ? {} : { maxChars: options.maxChars }),
      fields: this.#fields?.schema ?? null,
    };
  }

  /**
   * What the application reads: with custom fields, the typed view of the stored ones (declared
   * fields only; a stored value that no longer validates reads as null and is reported through
   * `onEvent` as `invalid-fields`, never thrown); without, the snapshot as stored.
   */
  #view(context: SessionContext | null): SessionContext<FieldsOf<S>> | null {
    if (!context) return null;
    if (!this.#fields) {
      return { ...context, fields: context.fields ?? null } as unknown as SessionContext<
        FieldsOf<S>
      >;
    }
    const { fields, invalid } = readFields(context.fields, this.#fields);
    if (invalid.length > 0) {
      this.#emit({
        type: 'invalid-fields',
        sessionId: context.sessionId,
        version: context.version,
        fields: invalid,
      });
    }
    return { ...context, fields } as unknown as SessionContext<FieldsOf<S>>;
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

  #assertOpen(action: string) {
    if (this.#closed) {
      throw new StorageError('CLOSED', `The session context store is closed: cannot ${action}`);
    }
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
