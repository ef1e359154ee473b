import type { SessionContextStore } from '@ctx/core';

/** Options of {@link startDrainLoop}. */
export interface DrainLoopOptions {
  /** The store whose turn log is drained. */
  store: SessionContextStore;
  /** Pause between the end of one drain and the start of the next, in milliseconds (at least 1). */
  intervalMs: number;
  /** Only sessions whose oldest pending turn is at least this old: fresher ones are left to the instance that recorded them. */
  olderThanMs: number;
  /** Called after a drain that folded something. */
  onFolded?: (result: { sessions: number; turns: number; durationMs: number }) => void;
  /** Called when a drain failed as a whole (e.g. the storage is down); the loop goes on. */
  onError?: (error: unknown) => void;
}

/** A running {@link startDrainLoop}. */
export interface DrainLoop {
  /** Starts no further drain, aborts the current one and resolves when it has ended. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Folds what other instances left behind: every `intervalMs` it calls `store.drain()` for sessions
 * whose pending turns nobody folded for `olderThanMs` (their instance crashed, was redeployed, or
 * gave up on a failing model). One drain at a time: the next is scheduled when the previous one
 * ends, so a slow drain never overlaps itself. Sessions folded elsewhere are skipped through their
 * leases, so every instance can run the loop.
 *
 * @example
 * ```ts
 * const loop = startDrainLoop({ store, intervalMs: 5000, olderThanMs: 10_000 });
 * // on shutdown, before store.flush() and closing the repository:
 * await loop.stop();
 * ```
 */
export function startDrainLoop(options: DrainLoopOptions): DrainLoop {
  const { store, intervalMs, olderThanMs } = options;
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;

  const run = async () => {
    const started = performance.now();
    try {
      const { sessions, turns } = await store.drain({ olderThanMs, signal: abort.signal });
      if (sessions > 0 && !abort.signal.aborted) {
        options.onFolded?.({
          sessions,
          turns,
          durationMs: Math.round(performance.now() - started),
        });
      }
    } catch (error) {
      if (!abort.signal.aborted) options.onError?.(error);
    }
  };
  const schedule = () => {
    if (abort.signal.aborted) return;
    timer = setTimeout(() => {
      current = run().finally(() => {
        current = undefined;
        schedule();
      });
    }, intervalMs);
    // The HTTP server keeps the process alive; a pending drain must not.
    timer.unref();
  };
  schedule();

  return {
    async stop() {
      abort.abort();
      clearTimeout(timer);
      await current;
    },
  };
}
