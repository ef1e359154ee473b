import { type ContextError, ExtractionError, isRetryableError } from './errors.js';

/** Retry settings of background folds. */
export interface BackgroundSettings {
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  /** How long to wait before looking again when another folder holds the session's lease. */
  busyDelayMs: number;
  /** How many times to look again before leaving the session to its other folder (or a drain). */
  maxBusyWaits: number;
}

/** What the scheduler reports after each failed attempt. */
export interface BackgroundFailure {
  sessionId: string;
  error: ContextError;
  attempt: number;
  willRetry: boolean;
  retryInMs?: number;
  durationMs: number;
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

/**
 * Folds sessions in the background of one store: one loop per session at a time (a kick while it
 * runs makes it go round once more), retryable failures retried with exponential backoff that
 * honours a provider's `retry-after`, and a session whose lease another folder holds looked at
 * again a few times. When the attempts run out the turns simply stay in the log, where the next
 * update or drain of any instance folds them: nothing is kept in this process.
 */
export class FoldScheduler {
  readonly #fold: (sessionId: string) => Promise<'busy' | 'done'>;
  readonly #settings: BackgroundSettings;
  readonly #onFailure: (failure: BackgroundFailure) => void;
  readonly #running = new Map<string, { again: boolean; done: Promise<void> }>();
  #flushing = new AbortController();

  constructor(
    fold: (sessionId: string) => Promise<'busy' | 'done'>,
    settings: BackgroundSettings,
    onFailure: (failure: BackgroundFailure) => void,
  ) {
    this.#fold = fold;
    this.#settings = settings;
    this.#onFailure = onFailure;
  }

  /** Makes sure the session's pending turns get folded soon. */
  kick(sessionId: string): void {
    const running = this.#running.get(sessionId);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false, done: Promise.resolve() };
    state.done = this.#loop(sessionId, state).finally(() => this.#running.delete(sessionId));
    this.#running.set(sessionId, state);
  }

  /** Resolves when every background fold has finished; waits between retries are cut short. */
  async flush(): Promise<void> {
    this.#flushing.abort();
    try {
      while (this.#running.size > 0) {
        await Promise.all([...this.#running.values()].map((state) => state.done));
      }
    } finally {
      this.#flushing = new AbortController();
    }
  }

  async #loop(sessionId: string, state: { again: boolean }): Promise<void> {
    const started = performance.now();
    let attempt = 1;
    let busyWaits = 0;
    for (;;) {
      state.again = false;
      let outcome: 'busy' | 'done';
      try {
        outcome = await this.#fold(sessionId);
      } catch (error) {
        const failure = error as ContextError;
        const willRetry = isRetryableError(failure) && attempt < this.#settings.maxAttempts;
        let retryInMs: number | undefined;
        if (willRetry) {
          const backoff = this.#settings.initialDelayMs * 2 ** (attempt - 1);
          const hinted = ExtractionError.isInstance(failure) ? (failure.retryAfterMs ?? 0) : 0;
          retryInMs = Math.min(this.#settings.maxDelayMs, Math.max(backoff, hinted));
        }
        this.#onFailure({
          sessionId,
          error: failure,
          attempt,
          willRetry,
          ...(retryInMs === undefined ? {} : { retryInMs }),
          durationMs: performance.now() - started,
        });
        if (!willRetry) return;
        attempt += 1;
        await sleep(retryInMs ?? 0, this.#flushing.signal);
        continue;
      }
      if (outcome === 'busy') {
        // Another folder has the lease: it folds these turns, unless it dies, in which case its
        // lease lapses and a later look finds the session free.
        busyWaits += 1;
        if (busyWaits > this.#settings.maxBusyWaits) return;
        await sleep(this.#settings.busyDelayMs, this.#flushing.signal);
        continue;
      }
      if (!state.again) return;
    }
  }
}
