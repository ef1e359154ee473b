import { type ContextDraft, type SessionContext, SessionContextStore } from '@ctx/core';
import type { Backend, StoreName } from './backends.js';
import { createInstantExtractor, createSnapshotFixture, createTurn } from './fixtures.js';
import { compareInterleaved, type LatencyStats, type Plan } from './stats.js';

/** Section 2: `SessionContextStore.update` with an extractor that answers at once. */
export interface UpdateResultRow {
  store: StoreName;
  label: string;
  /**
   * `store.update(...)`: validation, the owner check, recording the turn, the fold under the
   * session's lease (read, pending turns, the instant extractor, the compare-and-set save that
   * also takes the turn out of the log), releasing the lease.
   */
  update: LatencyStats;
  /** The repository work alone: the same `get` then compare-and-set `save`, called directly. */
  repositoryFloor: LatencyStats;
  /** `update.p50Us - repositoryFloor.p50Us`: what the store adds per update, in microseconds. */
  storeOverheadP50Us: number;
}

/** The fixed draft every benchmark extractor returns (planning mode). */
export function benchDraft(): ContextDraft {
  const fixture = createSnapshotFixture('draft', null);
  return {
    summary: fixture.summary,
    goal: fixture.goal,
    plan: fixture.plan,
    progress: fixture.progress,
  };
}

/** A store over `backend` with the instant extractor, in planning mode. */
export function createBenchStore(
  backend: Backend,
  config: { maxConflictRetries?: number } = {},
  onExtract?: () => void,
): SessionContextStore {
  const instant = createInstantExtractor(benchDraft());
  return new SessionContextStore({
    repository: backend.repository,
    extractor: onExtract
      ? {
          extract(request, options) {
            onExtract();
            return instant.extract(request, options);
          },
        }
      : instant,
    config: { enablePlanning: true, ...config },
  });
}

/** Messages of realistic size, reused round-robin. */
export const TURNS = Array.from({ length: 32 }, (_, index) => createTurn(index));

/**
 * Measures `update` on one store, interleaved with the bare repository calls it makes (`get`, then
 * `save` of the next version), so the store's own overhead can be read off.
 */
export async function benchUpdate(
  backend: Backend,
  plan: Plan,
  prefix: string,
): Promise<UpdateResultRow> {
  const store = createBenchStore(backend);
  const { repository } = backend;
  const userId = 'bench-user';
  const updateId = `${prefix}:update`;
  const floorId = `${prefix}:floor`;
  const draft = benchDraft();
  await store.update({ sessionId: updateId, userId, messages: TURNS[0] ?? [] });
  await repository.save(createSnapshotFixture(floorId, userId), { expectedVersion: null });

  const comparison = await compareInterleaved(
    (index) =>
      store.update({ sessionId: updateId, userId, messages: TURNS[index % TURNS.length] ?? [] }),
    async () => {
      const previous = (await repository.get(floorId)) as SessionContext;
      const next: SessionContext = {
        ...previous,
        summary: draft.summary,
        goal: draft.goal ?? null,
        plan: draft.plan ?? null,
        progress: draft.progress ?? null,
        updatedAt: new Date(),
        version: previous.version + 1,
      };
      await repository.save(next, { expectedVersion: previous.version });
    },
    plan,
  );
  return {
    store: backend.name,
    label: backend.label,
    update: comparison.adapter,
    repositoryFloor: comparison.raw,
    storeOverheadP50Us: comparison.overheadP50Us,
  };
}
