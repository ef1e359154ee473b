import { isDeepStrictEqual } from 'node:util';
import type { Backend, DatabaseStore } from './backends.js';
import { createSnapshotFixture, nextVersion } from './fixtures.js';
import { type Comparison, compareInterleaved, type Plan } from './stats.js';

/** The `get` throughput ratio (adapter / raw) each store must reach. */
export const GET_TARGETS: Record<DatabaseStore, number> = {
  sqlite: 0.8,
  postgres: 0.7,
  redis: 0.8,
  // A network round trip per call, like PostgreSQL.
  mysql: 0.7,
};

/** Section 1: one store's adapter against its raw driver. */
export interface RepositoryResult {
  store: DatabaseStore;
  label: string;
  get: Comparison;
  save: Comparison;
  /** What the raw side does, in words. */
  raw: { get: string; save: string };
  /** The `get` target and whether this run met it. */
  target: { getRatio: number; met: boolean };
}

/**
 * Benchmarks `get` and compare-and-set `save` of one store against its raw driver, interleaved.
 * Before measuring, it checks that both sides decode the same row into the same object.
 */
export async function benchRepository(
  backend: Backend,
  plan: Plan,
  prefix: string,
): Promise<RepositoryResult> {
  const { repository, raw } = backend;
  if (!raw || backend.name === 'memory') throw new Error(`${backend.name} has no raw driver`);
  const readId = `${prefix}:read`;
  const adapterWriteId = `${prefix}:write-adapter`;
  const rawWriteId = `${prefix}:write-raw`;
  const readSnapshot = createSnapshotFixture(readId, 'bench-user');
  const adapterBase = createSnapshotFixture(adapterWriteId, 'bench-user');
  const rawBase = createSnapshotFixture(rawWriteId, 'bench-user');
  for (const snapshot of [readSnapshot, adapterBase, rawBase]) {
    await repository.save(snapshot, { expectedVersion: null });
  }
  await raw.prepare?.(rawBase);

  const fromAdapter = await repository.get(readId);
  const fromRaw = await raw.get(readId);
  if (!isDeepStrictEqual(fromAdapter, fromRaw) || !isDeepStrictEqual(fromAdapter, readSnapshot)) {
    throw new Error(
      `${backend.label}: the raw get does not decode the row like the adapter does; the comparison would be unfair`,
    );
  }

  const get = await compareInterleaved(
    () => repository.get(readId),
    () => raw.get(readId),
    plan,
  );
  // Index i writes version i + 2 over version i + 1 (version 1 was written above).
  let rawSaves = 0;
  const save = await compareInterleaved(
    (index) => repository.save(nextVersion(adapterBase, index + 2), { expectedVersion: index + 1 }),
    (index) => {
      rawSaves += 1;
      return raw.save(nextVersion(rawBase, index + 2), index + 1);
    },
    plan,
  );
  const saved = await repository.get(rawWriteId);
  if (!saved || saved.version !== rawSaves + 1) {
    throw new Error(`${backend.label}: the raw saves did not all land`);
  }
  const target = GET_TARGETS[backend.name];
  return {
    store: backend.name,
    label: backend.label,
    get,
    save,
    raw: { get: raw.getDescription, save: raw.saveDescription },
    target: { getRatio: target, met: get.ratio >= target },
  };
}
