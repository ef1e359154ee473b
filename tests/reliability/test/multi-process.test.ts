import { assertValidSnapshot } from '@ctx/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type Backend, type BackendName, openBackend, randomId } from './helpers/backends.js';
import { killWorkers, spawnWorker } from './helpers/processes.js';

// K OS processes × M turns on ONE session, each through its own SessionContextStore and its own
// connection. The extractor appends the folded turns' unique marks to the previous summary, so a
// lost turn shows up as a missing mark, and a turn folded twice as a duplicated one.
const PROCESSES = 4;
const TURNS = 25;
const MAX_CONFLICT_RETRIES = 100;

interface WriterReport {
  tag: string;
  acknowledged: Array<{ mark: string; version: number }>;
  conflictRetries: number;
  retriedErrors: Record<string, number>;
  errors: Array<{ typed: boolean; code?: string; message: string }>;
}

afterAll(killWorkers);

const MULTI_PROCESS_BACKENDS: BackendName[] = ['sqlite', 'postgres', 'redis', 'mysql'];

describe.each(MULTI_PROCESS_BACKENDS)('%s: concurrent OS processes on one session', (name) => {
  let backend: Backend | undefined;
  afterAll(async () => {
    await backend?.dispose();
  });

  it(`${PROCESSES} processes × ${TURNS} turns through SessionContextStore lose no update`, async () => {
    backend = await openBackend(name);
    const sessionId = randomId('multi-process');
    const userId = randomId('owner');
    const writers = Array.from({ length: PROCESSES }, (_, index) =>
      spawnWorker<WriterReport>('store-writer.mjs', {
        connection: backend?.connection,
        sessionId,
        userId,
        tag: `p${index}`,
        turns: TURNS,
        maxConflictRetries: MAX_CONFLICT_RETRIES,
      }),
    );
    await Promise.all(writers.map((writer) => writer.printed('ready')));
    for (const writer of writers) writer.send('go');
    const results = await Promise.all(writers.map((writer) => writer.done));

    for (const result of results) {
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.report, result.stderr).toBeDefined();
      // Anything a writer did not retry must still be a typed ctx error — and none is expected.
      for (const error of result.report?.errors ?? [])
        expect(error.typed, error.message).toBe(true);
      expect(result.report?.errors).toEqual([]);
      for (const code of Object.keys(result.report?.retriedErrors ?? {})) {
        expect(['VERSION_CONFLICT', 'STORAGE_UNAVAILABLE']).toContain(code);
      }
    }
    const reports = results.map((result) => result.report as WriterReport);
    const acknowledged = reports.flatMap((report) => report.acknowledged);
    expect(acknowledged).toHaveLength(PROCESSES * TURNS);

    const stored = await backend.repository.get(sessionId);
    expect(stored).not.toBeNull();
    assertValidSnapshot(stored);
    expect(stored?.userId).toBe(userId);
    // Nothing is left in the turn log, and one version per extraction: at most one per turn.
    expect(await backend.repository.pendingTurns?.(sessionId)).toEqual([]);
    expect(stored?.version).toBeLessThanOrEqual(acknowledged.length);

    // Every acknowledged mark is present exactly once, and each answer's version holds its turn.
    const lines = stored?.summary.split('\n') ?? [];
    expect(lines).toHaveLength(acknowledged.length);
    expect(new Set(lines).size).toBe(lines.length);
    for (const { mark, version } of acknowledged) {
      expect(lines).toContain(mark);
      expect(version).toBeLessThanOrEqual(stored?.version ?? 0);
    }
    // A process's turns are sequential, so its marks appear in turn order.
    for (const report of reports) {
      const own = lines.filter((line) => line.startsWith(`${report.tag}:`));
      expect(own).toEqual(Array.from({ length: TURNS }, (_, turn) => `${report.tag}:${turn}`));
    }
  });
});
