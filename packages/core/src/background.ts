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

/**
 * Waits `ms`, or less when one of the signals is aborted (before or during the wait). An `unref`
 * wait does not keep the process alive.
 */
const sleep = (ms: number, signals: AbortSignal[], unref = false) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signals.some((signal) => signal.aborted)) return resolve();
    const finish = () => {
      clearTimeout(timer);
      for (const signal of signals) signal.removeEventListener('abort', finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    if (unref) timer.unref?.();
    for (const signal of signals) signal.addEventListener('abort', finish, { once: true });
  });

/** One session's background loop: when its next fold is due, and how to wake it sooner. */
interface SessionLoop {
  /** When the next fold is due (`performance.now()` time); undefined when none is asked for. */
  due: number | undefined;
  /** Cuts the current wait for `due` short (a sooner kick). */
  wake: AbortController | undefined;
  done: Promise<void>;
}

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
  readonly #running = new Map<string, SessionLoop>();
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

  /**
   * Makes sure the session's pending turns get folded within `delayMs` (0: now). A kick while a
   * fold runs makes the loop go round once more; of several kicks the soonest wins, so turns
   * recorded while the session waits join the same fold.
   */
  kick(sessionId: string, delayMs = 0): void {
    const due = performance.now() + delayMs;
    const running = this.#running.get(sessionId);
    if (running) {
      if (running.due === undefined || due < running.due) {
        running.due = due;
        running.wake?.abort();
      }
      return;
    }
    const loop: SessionLoop = { due, wake: undefined, done: Promise.resolve() };
    loop.done = this.#loop(sessionId, loop).finally(() => this.#running.delete(sessionId));
    this.#running.set(sessionId, loop);
  }

  /**
   * Resolves when every background fold has finished; waits for a due time or between retries are
   * cut short.
   */
  async flush(): Promise<void> {
    this.#flushing.abort();
    try {
      while (this.#running.size > 0) {
        await Promise.all([...this.#running.values()].map((loop) => loop.done));
      }
    } finally {
      this.#flushing = new AbortController();
    }
  }

  /** Waits until the loop's fold is due, a sooner kick moves it, or a flush asks for it now. */
  async #untilDue(loop: SessionLoop): Promise<void> {
    for (;;) {
      const left = (loop.due ?? 0) - performance.now();
      if (left <= 0 || this.#flushing.signal.aborted) return;
      loop.wake = new AbortController();
      // The turns are in the log: a process that exits meanwhile leaves them to the next update
      // or a drain, so the wait does not hold the process open.
      await sleep(left, [loop.wake.signal, this.#flushing.signal], true);
      loop.wake = undefined;
    }
  }

  async #loop(sessionId: string, loop: SessionLoop): Promise<void> {
    const started = performance.now();
    let attempt = 1;
    let busyWaits = 0;
    // Each round folds what is pending when it starts; a kick during the round asks for another.
    while (loop.due !== undefined) {
      await this.#untilDue(loop);
      loop.due = undefined;
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
        await sleep(retryInMs ?? 0, [this.#flushing.signal]);
        loop.due = 0;
        continue;
      }
      if (outcome === 'busy') {
        // Another folder has the lease: it folds these turns, unless it dies, in which case its
        // lease lapses and a later look finds the session free.
        busyWaits += 1;
        if (busyWaits > this.#settings.maxBusyWaits) return;
        await sleep(this.#settings.busyDelayMs, [this.#flushing.signal]);
        loop.due = 0;
      }
    }
  }
}
