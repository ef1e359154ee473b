import {
  ContextError,
  type ContextExtractor,
  type ContextRepository,
  ExtractionError,
  type SessionContextEvent,
  SessionContextStore,
} from '@ctx/core';

/** Settings of `ctx worker`, read from its command line. */
export interface WorkerSettings {
  /** Pause after a round that folded nothing, in milliseconds. */
  intervalMs: number;
  /** Only sessions whose oldest pending turn is at least this old: fresher ones are left to the instance that recorded them. */
  olderThanMs: number;
  /** Drains run side by side in each round. */
  concurrency: number;
  /** Sessions one drain takes at most. */
  limit: number;
  /** One round, then exit. */
  once: boolean;
  /** One JSON line per round instead of text. */
  json: boolean;
  /** Fold with planning (goal, plan, completed steps), like the app that records the turns. */
  planning: boolean;
  /** Extra instructions for the extractor, like the app's. */
  instructions: string | undefined;
}

/** What one round did, as `--json` prints it. */
export interface WorkerRound {
  /** 1 for the first round. */
  round: number;
  /** Sessions folded. */
  sessions: number;
  /** Turns folded into them. */
  turns: number;
  /** Sessions whose fold failed (their turns stay pending for a later round). */
  failed: number;
  durationMs: number;
  /** The code of the error that failed the round as a whole (e.g. the store was unreachable). */
  error?: string;
}

/** Where the worker reports, and how it learns to stop. */
export interface WorkerIo {
  /** Round reports: text lines, or JSON lines with `--json`. */
  report(line: string): void;
  /** One failure line (the caller adds the `ctx: ` prefix and masks passwords). */
  fail(line: string): void;
  /** See `CliIo.onStopRequest`. */
  onStopRequest?: (listener: (reason: string) => void) => () => void;
}

/** The repository, extractor and descriptions the worker runs with. */
export interface WorkerResources {
  repository: ContextRepository;
  extractor: ContextExtractor;
  /** The store URL with its password masked, for the startup line. */
  storeDescription: string;
  /** The extractor's description from `createExtractorFromEnv`, for the startup line. */
  modelDescription: string;
}

// A session id nobody uses: reading its pending turns proves the store answers and is migrated.
const PROBE_SESSION_ID = 'ctx-worker-probe';

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

const describeError = (error: unknown) =>
  ContextError.isInstance(error)
    ? { code: error.code, message: error.message }
    : { code: 'UNEXPECTED', message: error instanceof Error ? error.message : String(error) };

/**
 * Folds, round after round, the turns that no instance folds (it crashed, was redeployed, or
 * gave up): each round runs `settings.concurrency` drains side by side; they walk the same oldest
 * sessions, and the session leases keep each one to a single drain. After a round that folded
 * nothing the worker sleeps `settings.intervalMs`. A failed session or round is reported with
 * `io.fail` and the worker goes on. The first stop request ends it gracefully: no new round, the
 * current drain aborted, the store closed; it resolves with the exit code (0; with `once`, 1 when
 * something failed). Throws, before the first round, when the store cannot be read.
 */
export async function runWorker(
  resources: WorkerResources,
  settings: WorkerSettings,
  io: WorkerIo,
): Promise<number> {
  const stop = new AbortController();
  let stopReason: string | undefined;
  let failed = 0;
  const onEvent = (event: SessionContextEvent) => {
    if (event.type === 'failed') {
      // Folds cut short by a stop request are not failures: their turns simply stay pending.
      const aborted = ExtractionError.isInstance(event.error) && event.error.reason === 'aborted';
      if (stop.signal.aborted && aborted) return;
      failed += 1;
      // The turns the failed extraction was folding: the one that fails round after round is
      // what `ctx pending` and `ctx discard` are for.
      const turns = event.turnIds?.length
        ? ` (the extraction was folding ${event.turnIds.length === 1 ? 'turn' : 'turns'} ${event.turnIds.join(', ')})`
        : '';
      io.fail(
        `worker: session "${event.sessionId}" not folded (${event.error.code}): ${event.error.message}; its turns stay pending${turns}`,
      );
    } else if (event.type === 'messages-dropped') {
      io.fail(
        `worker: session "${event.sessionId}": ${plural(event.count, 'message')} of another user dropped`,
      );
    }
  };
  const store = new SessionContextStore({
    repository: resources.repository,
    extractor: resources.extractor,
    config: {
      enablePlanning: settings.planning,
      ...(settings.instructions === undefined ? {} : { instructions: settings.instructions }),
      onEvent,
    },
  });
  try {
    await store.pendingTurns(PROBE_SESSION_ID);
  } catch (error) {
    await store.close();
    throw error;
  }
  const unsubscribe = io.onStopRequest?.((reason) => {
    if (stopReason !== undefined) return;
    stopReason = reason;
    stop.abort();
  });
  if (!settings.json && !settings.once) {
    io.report(
      `Worker on ${resources.storeDescription} with ${resources.modelDescription}: folds turns pending for ${settings.olderThanMs} ms or more, ${plural(settings.concurrency, 'drain')} per round, every ${settings.intervalMs} ms when idle. Stop with Ctrl-C or SIGTERM.`,
    );
  }
  const totals = { rounds: 0, turns: 0 };
  let exitCode = 0;
  try {
    while (!stop.signal.aborted) {
      totals.rounds += 1;
      failed = 0;
      const started = performance.now();
      // allSettled: a failed drain must not start the next round while the others still run.
      const outcomes = await Promise.allSettled(
        Array.from({ length: settings.concurrency }, () =>
          store.drain({
            olderThanMs: settings.olderThanMs,
            limit: settings.limit,
            signal: stop.signal,
          }),
        ),
      );
      const round: WorkerRound = {
        round: totals.rounds,
        sessions: 0,
        turns: 0,
        failed: 0,
        durationMs: 0,
      };
      const errors: unknown[] = [];
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') {
          errors.push(outcome.reason);
        } else {
          round.sessions += outcome.value.sessions;
          round.turns += outcome.value.turns;
        }
      }
      round.failed = failed;
      round.durationMs = Math.round(performance.now() - started);
      totals.turns += round.turns;
      if (errors.length > 0) {
        const { code, message } = describeError(errors[0]);
        round.error = code;
        const which =
          errors.length > 1 ? ` (${errors.length} of ${settings.concurrency} drains)` : '';
        io.fail(`worker: round ${round.round} failed${which} (${code}): ${message}`);
      }
      if (settings.json) {
        io.report(JSON.stringify(round));
      } else if (settings.once || round.sessions > 0) {
        io.report(
          `Round ${round.round}: folded ${plural(round.turns, 'turn')} of ${plural(round.sessions, 'session')} in ${round.durationMs} ms${round.failed > 0 ? `; ${round.failed} failed` : ''}.`,
        );
      }
      if (settings.once) {
        if (errors.length > 0 || round.failed > 0) exitCode = 1;
        break;
      }
      // A round that folded something may have left more behind: go on at once.
      if (round.sessions === 0) await sleep(settings.intervalMs, stop.signal);
    }
  } finally {
    await store.close();
    unsubscribe?.();
  }
  if (stopReason !== undefined && !settings.json) {
    io.report(
      `Stopped (${stopReason}) after ${plural(totals.rounds, 'round')}: folded ${plural(totals.turns, 'turn')}.`,
    );
  }
  return exitCode;
}
