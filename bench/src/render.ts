import { renderSessionContext } from '@ctx/core';
import type { Backend, StoreName } from './backends.js';
import { createSnapshotFixture } from './fixtures.js';
import { compareInterleaved, type LatencyStats, measure, type Plan } from './stats.js';
import { createBenchStore } from './update.js';

/** Section 5 for one store: the prompt hot path. */
export interface RenderResultRow {
  store: StoreName;
  label: string;
  /** `store.render(sessionId, { userId })`: id validation, repository `get`, ownership check, render. */
  render: LatencyStats;
  /** The repository `get` alone, interleaved with it. */
  repositoryGet: LatencyStats;
  /** `render.p50Us - repositoryGet.p50Us`. */
  overheadP50Us: number;
  /** Characters of the rendered block. */
  blockChars: number;
}

/** Benchmarks `store.render` (get + render) on one store. */
export async function benchRender(
  backend: Backend,
  plan: Plan,
  prefix: string,
): Promise<RenderResultRow> {
  const store = createBenchStore(backend);
  const userId = 'bench-user';
  const sessionId = `${prefix}:render`;
  await backend.repository.save(createSnapshotFixture(sessionId, userId), {
    expectedVersion: null,
  });
  const block = await store.render(sessionId, { userId });
  if (!block.startsWith('<session_context>')) throw new Error('render returned no block');
  const comparison = await compareInterleaved(
    () => store.render(sessionId, { userId }),
    () => backend.repository.get(sessionId),
    plan,
  );
  return {
    store: backend.name,
    label: backend.label,
    render: comparison.adapter,
    repositoryGet: comparison.raw,
    overheadP50Us: comparison.overheadP50Us,
    blockChars: block.length,
  };
}

/** `renderSessionContext` alone on the fixture snapshot: the CPU cost of rendering. */
export async function benchRenderOnly(plan: Plan): Promise<LatencyStats> {
  const snapshot = createSnapshotFixture('render-only', 'bench-user');
  return measure(() => renderSessionContext(snapshot), plan);
}
