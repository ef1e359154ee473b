import { ContextError, ExtractionError, StorageError, VersionConflictError } from './errors.js';
import type { ContextExtractor, TokenUsage } from './extraction.js';
import { applyFieldsPolicy, type CompiledFields, readFields } from './fields.js';
import { contentLength, splitForExtraction } from './input-parts.js';
import { applyUpdatePolicy, messagesForExtraction } from './policy.js';
import type { ContextRepository } from './repository.js';
import {
  ContextDraftSchema,
  type Message,
  type SessionContext,
  type StoredFields,
  toValidationIssues,
} from './schema.js';
import { toTokenUsage } from './token-usage.js';
import type { RecordedTurn, TurnLog } from './turn-log.js';

/** A repository with the turn log: what the store folds through. */
export type TurnLogRepository = ContextRepository & TurnLog;

/** What the orchestrator lends a fold. */
export interface FoldSettings {
  repository: TurnLogRepository;
  extractor: ContextExtractor;
  planning: boolean;
  instructions: string | undefined;
  /** The application's custom fields, compiled; undefined when it declared none. */
  fields: CompiledFields | undefined;
  maxConflictRetries: number;
  /** Time limit of one extraction; 0 disables it. */
  timeoutMs: number;
  /**
   * Message characters one extraction may take; a longer pending log takes several, and a single
   * longer turn is read in consecutive parts.
   */
  maxInputChars: number;
  /** How long a fold's lease lasts; it is renewed every third of it while the fold runs. */
  leaseTtlMs: number;
  now(): Date;
  emit(event: FoldEvent): void;
}

/** Events a fold reports (the store adds `background`). */
export type FoldEvent =
  | {
      type: 'folded';
      sessionId: string;
      version: number;
      turns: number;
      messageCount: number;
      durationMs: number;
      usage?: TokenUsage;
      conflictRetries: number;
    }
  | {
      type: 'conflict-retried';
      sessionId: string;
      attempt: number;
      expectedVersion: number | null;
      currentVersion: number | null;
    }
  | { type: 'rejected'; sessionId: string; turns: RecordedTurn[] }
  | { type: 'extraction-tolerated'; sessionId: string; droppedKeys: string[] };

/** What one fold did; `busy` when another folder holds the session's lease. */
export type FoldOutcome =
  | 'busy'
  | {
      /** Turns folded into the snapshot (applied or, for other owners, let go). */
      turns: number;
      /** Extractions made. */
      extractions: number;
      usage?: TokenUsage;
      conflictRetries: number;
      /** The snapshot after the fold (or as found, when nothing was pending). */
      context: SessionContext | null;
      /** Whether this fold folded the `until` turn (then `context` holds it). */
      reached: boolean;
    };

/** Passes ctx errors through; wraps anything else as an extraction or a storage failure. */
export function toContextError(error: unknown, fallback: 'extraction' | 'storage'): ContextError {
  if (ContextError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return fallback === 'extraction'
    ? new ExtractionError('unknown', `The extractor failed: ${message}`, { cause: error })
    : new StorageError('STORAGE_ERROR', `The repository failed: ${message}`, { cause: error });
}

/**
 * Splits the pending log (oldest first) into the turns the next extraction applies and the turns
 * it lets go: a turn of a user other than the session's owner is never applied (the first turn of
 * a session that does not exist yet makes its sender the owner). The applied turns are
 * consecutive, oldest first, within `maxInputChars` (at least one: a longer turn goes alone, and
 * the fold reads it in parts).
 */
export function selectBatch(
  previous: SessionContext | null,
  pending: RecordedTurn[],
  maxInputChars: number,
): { apply: RecordedTurn[]; reject: RecordedTurn[]; owner: string | null } {
  let owner = previous?.userId ?? null;
  const apply: RecordedTurn[] = [];
  const reject: RecordedTurn[] = [];
  let chars = 0;
  for (const turn of pending) {
    if (previous === null && apply.length === 0 && reject.length === 0) owner = turn.userId;
    if (turn.userId !== null && owner !== null && turn.userId !== owner) {
      reject.push(turn);
      continue;
    }
    const length = contentLength(turn.messages);
    if (apply.length > 0 && chars + length > maxInputChars) break;
    apply.push(turn);
    chars += length;
  }
  return { apply, reject, owner };
}

/**
 * One extraction with the time limit and the caller's signal; the draft is validated, and the
 * custom fields are applied to the stored ones (an invalid value fails the extraction).
 */
async function extract(
  settings: FoldSettings,
  previous: SessionContext | null,
  messages: Message[],
  callerSignal: AbortSignal | undefined,
) {
  const timeout = settings.timeoutMs > 0 ? AbortSignal.timeout(settings.timeoutMs) : undefined;
  const signals = [callerSignal, timeout].filter((signal): signal is AbortSignal => !!signal);
  const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
  const { fields } = settings;
  // The model sees the declared fields only, as the application reads them.
  const shown =
    previous && fields
      ? { ...previous, fields: readFields(previous.fields, fields).fields }
      : previous;
  try {
    const result = await settings.extractor.extract(
      {
        previous: shown as SessionContext | null,
        messages,
        planning: settings.planning,
        ...(settings.instructions ? { instructions: settings.instructions } : {}),
        ...(fields ? { fields: fields.extraction } : {}),
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
    const nextFields = applyFieldsPolicy(previous?.fields, draft.data.fields, fields);
    return {
      draft: draft.data,
      fields: nextFields,
      // An extractor's usage is taken only as numbers: "12" + "3" must never become "123".
      usage: toTokenUsage(result.usage?.inputTokens, result.usage?.outputTokens),
      tolerated: result.tolerated,
    };
  } catch (error) {
    if (timeout?.aborted && !callerSignal?.aborted) {
      throw new ExtractionError(
        'timeout',
        `The extraction took longer than ${settings.timeoutMs} ms`,
        { cause: error },
      );
    }
    if (callerSignal?.aborted && !ContextError.isInstance(error)) {
      throw new ExtractionError('aborted', 'The extraction was aborted', { cause: error });
    }
    throw toContextError(error, 'extraction');
  }
}

/** What a fold writes besides ids, times and versions. */
type ContextContent = Pick<SessionContext, 'summary' | 'goal' | 'plan' | 'progress'>;

/** The snapshot a fold saves: `content` over `previous`, one version on. */
function nextSnapshot(
  sessionId: string,
  previous: SessionContext | null,
  owner: string | null,
  content: ContextContent | null,
  fields: StoredFields | null,
  now: Date,
): SessionContext {
  return {
    sessionId,
    userId: previous ? previous.userId : owner,
    summary: content?.summary ?? '',
    goal: content?.goal ?? null,
    plan: content?.plan ?? null,
    progress: content?.progress ?? null,
    createdAt: previous?.createdAt ?? now,
    // Never move backwards, even when instances' clocks disagree.
    updatedAt: previous && previous.updatedAt > now ? previous.updatedAt : now,
    version: (previous?.version ?? 0) + 1,
    fields,
  };
}

// The turns of the extraction an error came from, for the `failed` event (the error stays the
// extractor's own, so callers and `isRetryableError` see it unchanged).
const failedTurns = new WeakMap<object, string[]>();

/** The ids of the turns whose extraction failed with `error`, oldest first, if it came from one. */
export function turnIdsOfFailure(error: unknown): string[] | undefined {
  return typeof error === 'object' && error !== null ? failedTurns.get(error) : undefined;
}

const addUsage = (total: TokenUsage | undefined, more: TokenUsage | undefined) =>
  more
    ? {
        inputTokens: (total?.inputTokens ?? 0) + more.inputTokens,
        outputTokens: (total?.outputTokens ?? 0) + more.outputTokens,
      }
    : total;

/**
 * Folds a session's pending turns into its snapshot under the session's lease: read the snapshot
 * and the pending log, extract from the oldest turns (several extractions when they exceed
 * `maxInputChars`), and save each new version with the turns it folded in one compare-and-set.
 * Stops when nothing is pending, or as soon as `until` (a turn id) is folded. A lost race re-reads
 * and extracts again (bounded); correctness rests on compare-and-set, the lease only saves the
 * model calls of folders that would lose.
 */
export async function foldSession(
  settings: FoldSettings,
  sessionId: string,
  options: { holder: string; until?: string; signal?: AbortSignal },
): Promise<FoldOutcome> {
  const { repository, leaseTtlMs } = settings;
  const lease = { holder: options.holder, ttlMs: leaseTtlMs };
  if (!(await repository.acquireLease(sessionId, lease))) return 'busy';
  // A long extraction keeps its lease; a crashed folder's lease lapses within leaseTtlMs.
  const renewal = setInterval(
    () => {
      repository.acquireLease(sessionId, lease).catch(() => undefined);
    },
    Math.max(1, Math.floor(leaseTtlMs / 3)),
  );
  renewal.unref?.();
  let turns = 0;
  let extractions = 0;
  let usage: TokenUsage | undefined;
  let conflictRetries = 0;
  let context: SessionContext | null = null;
  let reached = false;
  // The snapshot this fold saved last: the next round starts from it instead of reading it again
  // (a stale one is caught by the compare-and-set, which then re-reads).
  let saved: SessionContext | undefined;
  try {
    for (let attempt = 0; ; ) {
      const started = performance.now();
      const previous = saved ?? (await repository.get(sessionId));
      saved = undefined;
      context = previous;
      const pending = await repository.pendingTurns(sessionId);
      if (pending.length === 0) break;
      if (options.until !== undefined && !pending.some((turn) => turn.turnId === options.until)) {
        break;
      }
      const { apply, reject, owner } = selectBatch(previous, pending, settings.maxInputChars);
      const next = (content: ContextContent | null, fields: StoredFields | null) =>
        nextSnapshot(sessionId, previous, owner, content, fields, settings.now());
      let snapshot = next(previous, previous?.fields ?? null);
      const messages = messagesForExtraction(apply.flatMap((turn) => turn.messages));
      let batchUsage: TokenUsage | undefined;
      // A turn longer than one extraction may take is read in consecutive parts, each starting
      // from what the parts before it made; the result is saved once, so a failure in any part
      // leaves the turn pending as a whole.
      const parts = apply.length > 0 ? splitForExtraction(messages, settings.maxInputChars) : [];
      let from = previous;
      for (const part of parts) {
        const result = await extract(settings, from, part, options.signal).catch(
          (error: unknown) => {
            if (typeof error === 'object' && error !== null) {
              failedTurns.set(
                error,
                apply.map((turn) => turn.turnId),
              );
            }
            throw error;
          },
        );
        extractions += 1;
        const droppedKeys = result.tolerated?.droppedKeys;
        if (Array.isArray(droppedKeys) && droppedKeys.length > 0) {
          settings.emit({ type: 'extraction-tolerated', sessionId, droppedKeys: [...droppedKeys] });
        }
        batchUsage = addUsage(batchUsage, result.usage);
        usage = addUsage(usage, result.usage);
        snapshot = next(
          applyUpdatePolicy(from, result.draft, { planning: settings.planning }),
          result.fields,
        );
        from = snapshot;
      }
      const messageCount = messages.length;
      const folded = [...apply, ...reject];
      try {
        context = await repository.save(snapshot, {
          expectedVersion: previous?.version ?? null,
          foldedTurnIds: folded.map((turn) => turn.turnId),
        });
      } catch (error) {
        if (!VersionConflictError.isInstance(error) || attempt >= settings.maxConflictRetries) {
          throw toContextError(error, 'storage');
        }
        attempt += 1;
        conflictRetries += 1;
        settings.emit({
          type: 'conflict-retried',
          sessionId,
          attempt,
          expectedVersion: error.expectedVersion,
          currentVersion: error.currentVersion,
        });
        // Colliding folders would collide again in lockstep: wait a random, growing moment.
        await new Promise((resolve) =>
          setTimeout(resolve, Math.random() * Math.min(100, 2 ** attempt)),
        );
        continue;
      }
      turns += folded.length;
      saved = context;
      if (reject.length > 0) settings.emit({ type: 'rejected', sessionId, turns: reject });
      settings.emit({
        type: 'folded',
        sessionId,
        version: context.version,
        turns: folded.length,
        messageCount,
        durationMs: performance.now() - started,
        ...(batchUsage ? { usage: batchUsage } : {}),
        conflictRetries,
      });
      if (options.until !== undefined && folded.some((turn) => turn.turnId === options.until)) {
        reached = true;
        break;
      }
    }
  } finally {
    clearInterval(renewal);
    await repository.releaseLease(sessionId, options.holder).catch(() => undefined);
  }
  return { turns, extractions, ...(usage ? { usage } : {}), conflictRetries, context, reached };
}

/**
 * Takes the pending turns named in `turnIds` out of the session's log without folding them: one
 * compare-and-set that saves the snapshot as it is, one version on (an empty one owned by the
 * oldest turn's user when the session has none yet), with those turns as folded. `keep` filters
 * which of them may go. Resolves with the turns taken out, oldest first (none when none is
 * pending). A lost race re-reads and tries again (bounded).
 */
export async function discardTurns(
  settings: Omit<FoldSettings, 'emit'>,
  sessionId: string,
  turnIds: ReadonlySet<string>,
  keep: (turn: RecordedTurn, previous: SessionContext | null) => boolean,
): Promise<RecordedTurn[]> {
  const { repository } = settings;
  for (let attempt = 0; ; attempt += 1) {
    const previous = await repository.get(sessionId);
    const pending = await repository.pendingTurns(sessionId);
    const discarded = pending.filter((turn) => turnIds.has(turn.turnId) && keep(turn, previous));
    if (discarded.length === 0) return [];
    const owner = previous?.userId ?? pending[0]?.userId ?? null;
    const snapshot = nextSnapshot(
      sessionId,
      previous,
      owner,
      previous,
      previous?.fields ?? null,
      settings.now(),
    );
    try {
      await repository.save(snapshot, {
        expectedVersion: previous?.version ?? null,
        foldedTurnIds: discarded.map((turn) => turn.turnId),
      });
      return discarded;
    } catch (error) {
      if (!VersionConflictError.isInstance(error) || attempt >= settings.maxConflictRetries) {
        throw toContextError(error, 'storage');
      }
    }
  }
}
