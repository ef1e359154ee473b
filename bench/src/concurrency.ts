import { performance } from 'node:perf_hooks';
import { ContextError, type UpdateResult } from '@ctx/core';
import type { Backend, StoreName } from './backends.js';
import { summarize } from './stats.js';
import { createBenchStore, TURNS } from './update.js';

/** Updates per second with N sessions updated in parallel (one store, each session's updates in sequence). */
export interface ParallelSessionsPoint {
  sessions: number;
  updates: number;
  updatesPerSec: number;
  p50Us: number;
  p99Us: number;
}

/** Many writers on one session: each writer is its own `SessionContextStore`, so only compare-and-set keeps them apart. */
export interface ContentionPoint {
  writers: number;
  /** Updates started (every writer makes the same number). */
  attempted: number;
  /** Successful writes. */
  writes: number;
  writesPerSec: number;
  /** Version conflicts retried, per successful write. */
  conflictRetriesPerWrite: number;
  /**
   * Extractions (model calls) per acknowledged turn: at most 1 with the turn log (concurrent turns
   * share extractions); each lost compare-and-set race would cost one more.
   */
  extractionsPerTurn: number;
  /**
   * Updates that gave up with `VERSION_CONFLICT` after `maxConflictRetries` retries: a writer that
   * kept losing the race (the store retries at once, without backoff).
   */
  failed: number;
  p50Us: number;
  p99Us: number;
}

/** Section 4 for one store. */
export interface ConcurrencyResult {
  store: StoreName;
  label: string;
  parallelSessions: ParallelSessionsPoint[];
  oneSession: ContentionPoint[];
}

/** How much work section 4 does. */
export interface ConcurrencyPlan {
  /** Session counts to run in parallel. */
  sessions: readonly number[];
  /** Updates per level, spread over its sessions (at least 2 per session). */
  updatesPerLevel: number;
  /** Writer counts on one session. */
  writers: readonly number[];
  /** Successful writes per writer count, spread over its writers. */
  writesPerLevel: number;
  /** `maxConflictRetries` of the contending stores. */
  maxConflictRetries: number;
}

const round2 = (value: number) => Math.round(value * 100) / 100;

async function timed<T>(latencies: number[], body: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await body();
  } finally {
    latencies.push(performance.now() - start);
  }
}

/** Runs section 4 on one store. */
export async function benchConcurrency(
  backend: Backend,
  plan: ConcurrencyPlan,
  prefix: string,
): Promise<ConcurrencyResult> {
  const userId = 'bench-user';
  const parallelSessions: ParallelSessionsPoint[] = [];
  for (const sessions of plan.sessions) {
    const store = createBenchStore(backend);
    const perSession = Math.max(2, Math.ceil(plan.updatesPerLevel / sessions));
    const ids = Array.from({ length: sessions }, (_, index) => `${prefix}:p${sessions}:${index}`);
    // Warm-up: every session is created (and the connections opened) before the clock starts.
    await Promise.all(
      ids.map((sessionId) => store.update({ sessionId, userId, messages: TURNS[0] ?? [] })),
    );
    const latencies: number[] = [];
    const start = performance.now();
    await Promise.all(
      ids.map(async (sessionId, session) => {
        for (let index = 0; index < perSession; index += 1) {
          const messages = TURNS[(session + index) % TURNS.length] ?? [];
          await timed(latencies, () => store.update({ sessionId, userId, messages }));
        }
      }),
    );
    const wallMs = performance.now() - start;
    const stats = summarize(latencies, wallMs);
    parallelSessions.push({
      sessions,
      updates: stats.ops,
      updatesPerSec: stats.opsPerSec,
      p50Us: stats.p50Us,
      p99Us: stats.p99Us,
    });
  }

  const oneSession: ContentionPoint[] = [];
  for (const writers of plan.writers) {
    const sessionId = `${prefix}:w${writers}`;
    let extractions = 0;
    const stores = Array.from({ length: writers }, () =>
      createBenchStore(backend, { maxConflictRetries: plan.maxConflictRetries }, () => {
        extractions += 1;
      }),
    );
    await stores[0]?.update({ sessionId, userId, messages: TURNS[0] ?? [] });
    const before = (await backend.repository.get(sessionId))?.version ?? 0;
    extractions = 0;
    const perWriter = Math.max(2, Math.ceil(plan.writesPerLevel / writers));
    const latencies: number[] = [];
    let retries = 0;
    let failed = 0;
    const start = performance.now();
    await Promise.all(
      stores.map(async (store, writer) => {
        for (let index = 0; index < perWriter; index += 1) {
          const messages = TURNS[(writer + index) % TURNS.length] ?? [];
          try {
            const result: UpdateResult = await timed(latencies, () =>
              store.update({ sessionId, userId, messages }),
            );
            retries += result.conflictRetries;
          } catch (error) {
            if (!ContextError.isInstance(error) || error.code !== 'VERSION_CONFLICT') throw error;
            failed += 1;
          }
        }
      }),
    );
    const wallMs = performance.now() - start;
    const stats = summarize(latencies, wallMs);
    const writes = stats.ops - failed;
    // Every acknowledged turn is folded (none left pending), and every extraction is one version.
    const pending = await backend.repository.pendingTurns?.(sessionId);
    const stored = await backend.repository.get(sessionId);
    if ((pending?.length ?? 0) > 0 || stored?.version !== before + extractions) {
      throw new Error(
        `${backend.label}: ${writes} turns acknowledged, ${pending?.length} still pending, ${extractions} extractions, version ${stored?.version} (from ${before}): a lost or double fold`,
      );
    }
    oneSession.push({
      writers,
      attempted: perWriter * writers,
      writes,
      writesPerSec: wallMs > 0 ? Math.round((writes / wallMs) * 1000) : 0,
      conflictRetriesPerWrite: writes > 0 ? round2(retries / writes) : 0,
      extractionsPerTurn: writes > 0 ? round2(extractions / writes) : 0,
      failed,
      p50Us: stats.p50Us,
      p99Us: stats.p99Us,
    });
  }
  return { store: backend.name, label: backend.label, parallelSessions, oneSession };
}
