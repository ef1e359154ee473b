import { z } from 'zod';
import type { ContextError } from './errors.js';
import type { TokenUsage } from './extraction.js';
import type { InvalidField } from './fields.js';
import type { FoldEvent } from './fold.js';
import { UPDATE_MODES, type UpdateMode } from './policy.js';
import { MIN_RENDER_CHARS, type RenderOptions } from './render.js';
import type { SessionContext, SessionContextBase } from './schema.js';
import {
  type Message,
  MessageSchema,
  SessionIdSchema,
  TurnIdSchema,
  UserIdSchema,
} from './schema.js';
import type { RecordedTurn } from './turn-log.js';

// The options, inputs, results and events of SessionContextStore, and the schemas that check them.

/** Retries of background folds (after `schedule`). */
export interface BackgroundConfig {
  /**
   * Attempts per background fold (the first included). Only retryable failures (outages, rate
   * limits, bad samples) are retried; when the attempts run out the turns stay in the log for the
   * session's next update or a drain. @default 5
   */
  maxAttempts?: number;
  /** Delay before the first retry; doubles each time. @default 500 */
  initialDelayMs?: number;
  /** Upper bound of the retry delay (a provider's `retry-after` is honoured up to it). @default 30000 */
  maxDelayMs?: number;
}

/** How turns are folded into the snapshot. */
export interface FoldConfig {
  /**
   * Message characters one extraction may take: set it to what the context model can read.
   * Pending turns beyond it are folded in further extractions, oldest first; a single larger turn
   * is read in consecutive parts (split between messages, a longer message in labelled pieces),
   * each extraction starting from what the parts before it made, and saved once — never cut, and
   * never a request larger than the model can take. @default 200000
   */
  maxInputChars?: number;
  /**
   * How long a folder's lease on a session lasts; it is renewed every third of it while the fold
   * runs, so a crashed folder's sessions are taken over after at most this long. @default 10000
   */
  leaseTtlMs?: number;
  /**
   * How long `update` waits for its turn to be folded by another folder (another instance, or a
   * background fold of this one) before it fails with a retryable `EXTRACTION_FAILED` (`timeout`);
   * the turn stays recorded. @default 300000
   */
  waitTimeoutMs?: number;
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
  /** Retries of background folds. */
  background?: BackgroundConfig;
  /** Batching, leases and waiting of folds. */
  fold?: FoldConfig;
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
  /**
   * The turn's id in the session's log. Give your own (a request id) to make retries safe: a turn
   * id recorded twice is folded once. @default a random UUID
   */
  turnId?: string;
}

/**
 * What {@link SessionContextStore.update} did. `C`: the snapshot type, `SessionContext<F>` for a
 * store with typed custom fields.
 */
export interface UpdateResult<C extends SessionContextBase = SessionContext> {
  /** The stored snapshot after the call (unchanged when skipped), or null when there is none. */
  context: C | null;
  /** Whether the turn is folded into a stored version (false when skipped). */
  updated: boolean;
  /**
   * Why the turn is not in a stored version, when `updated` is false: it had nothing
   * conversational (nothing was recorded), or the session was deleted while the update ran (the
   * turn went with it).
   */
  skipped?: 'no-conversational-content' | 'session-deleted';
  /** The turn's id in the log (absent when skipped: nothing was recorded). */
  turnId?: string;
  /** Tokens of the extractions this call made (none when another folder folded the turn). */
  usage?: TokenUsage;
  /** How many version conflicts this call's folds retried. */
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
      /** Turns folded into this version. */
      turns: number;
      messageCount: number;
      background: boolean;
    }
  | { type: 'skipped'; sessionId: string; reason: 'no-conversational-content'; background: boolean }
  | Extract<FoldEvent, { type: 'conflict-retried' }>
  | {
      /**
       * The extractor accepted a model output with extra keys outside the extraction schema whose
       * values were empty (`"goal": null` in summary mode, `"progress": []`), and dropped them. The
       * update went on; frequent events point at a loose model or a missing structured-output mode.
       */
      type: 'extraction-tolerated';
      sessionId: string;
      /** The keys dropped from the model's output. */
      droppedKeys: string[];
      background: boolean;
    }
  | {
      type: 'failed';
      sessionId: string;
      error: ContextError;
      durationMs: number;
      background: boolean;
      /** Attempt number of a background fold (1-based); 1 for direct updates. */
      attempt: number;
      /** A background fold will be tried again after `retryInMs`. */
      willRetry: boolean;
      retryInMs?: number;
      /**
       * When the extraction failed: the turns it was folding, oldest first. A turn that shows up
       * here fold after fold may be one the model can never fold (see `discardPendingTurns`).
       */
      turnIds?: string[];
    }
  | {
      /**
       * A read found stored custom-field values that the store's fields schema no longer accepts
       * (the schema changed): they read as null and stay untouched in storage until the model
       * writes a new value.
       */
      type: 'invalid-fields';
      sessionId: string;
      version: number;
      fields: InvalidField[];
    }
  | {
      /**
       * `discardPendingTurns` took these turns out of the log without folding them: the session
       * context will never hold them.
       */
      type: 'turns-discarded';
      sessionId: string;
      turns: RecordedTurn[];
    }
  | {
      type: 'messages-dropped';
      sessionId: string;
      count: number;
      /** Turns of a user who does not own the session are let go, never applied. */
      reason: 'rejected';
    };

export const configSchema = z
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
      })
      .strict()
      .optional(),
    fold: z
      .object({
        maxInputChars: z.number().int().min(1000).optional(),
        leaseTtlMs: z.number().int().min(100).optional(),
        waitTimeoutMs: z.number().int().min(0).optional(),
      })
      .strict()
      .optional(),
    onEvent: z.function().optional(),
    now: z.function().optional(),
  })
  .strict();

export const updateInputSchema = z.object({
  sessionId: SessionIdSchema,
  userId: UserIdSchema.optional(),
  messages: z.array(MessageSchema).max(1_000),
  turnId: TurnIdSchema.optional(),
});

/** Options of {@link SessionContextStore.schedule}. */
export interface ScheduleOptions {
  /**
   * How long the background fold may wait for more turns of this session before it folds, so
   * that they share one extraction — for example the steps of a tool loop, each one model call.
   * The soonest due time of the session's pending turns wins: a `schedule` without delay folds at
   * once (this turn included), and so do `update`, `flush` and `close`. The turn is recorded
   * before `schedule` resolves whatever the delay, and the wait does not keep the process alive:
   * a process that exits meanwhile leaves the turn to the session's next update or a drain (call
   * `flush()` before exiting to fold it now). At most one hour. @default 0
   */
  foldDelayMs?: number;
}

export const scheduleOptionsSchema = z
  .object({ foldDelayMs: z.number().int().min(0).max(3_600_000).optional() })
  .strict()
  .optional();

export const discardTurnIdsSchema = z.array(TurnIdSchema).min(1).max(1_000);

export const userOptionSchema = z.object({ userId: UserIdSchema.optional() }).optional();

export const drainOptionsSchema = z
  .object({
    olderThanMs: z.number().int().min(0).optional(),
    limit: z.number().int().min(1).max(10_000).optional(),
    signal: z.instanceof(AbortSignal).optional(),
  })
  .optional();
