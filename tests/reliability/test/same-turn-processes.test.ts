import { assertValidSnapshot } from '@ctx/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type Backend, type BackendName, openBackend, randomId } from './helpers/backends.js';
import { killWorkers, spawnWorker } from './helpers/processes.js';

// The same turn submitted by two OS processes at once (a client that retried against another
// instance behind a load balancer), each with its own SessionContextStore and connection: the
// turn id makes the second submission a duplicate, so each turn is folded once — one line in the
// summary, one extraction, one version — whether both wait for the fold (`update`) or one leaves
// it to its background fold (`schedule`).

interface SameTurnReport {
  tag: string;
  /** Mark → how many times this process's extractor was given it. */
  seen: Record<string, number>;
  results: Array<{
    round: number;
    how: 'update' | 'schedule';
    updated?: boolean;
    version?: number;
    summary?: string;
  }>;
  errors: Array<{ round: number; typed: boolean; code?: string; message: string }>;
}

const ROUNDS = 24;
const BACKENDS: BackendName[] = ['sqlite', 'postgres', 'redis', 'mysql'];

afterAll(killWorkers);

/** Rounds 0, 1 (mod 4): both `update`; 2: A schedules, B updates; 3: A updates, B schedules. */
function plan(round: number): [string, string] {
  const how = (side: 0 | 1) => (round % 4 === 2 + side ? 'schedule' : 'update');
  // Half the rounds start together; in the others one side starts up to 3 ms later, so the
  // second submission lands during the first one's record, its fold, or its save.
  const jitter = round % 2 === 0 ? 0 : Math.round(Math.random() * 30) / 10;
  const late = Math.random() < 0.5 ? 0 : 1;
  return [
    `${round} ${how(0)} ${late === 0 ? jitter : 0}`,
    `${round} ${how(1)} ${late === 1 ? jitter : 0}`,
  ];
}

describe.each(BACKENDS)('%s: one turn id submitted by two processes', (name) => {
  let backend: Backend | undefined;
  afterAll(async () => {
    await backend?.dispose();
  });

  it(`${ROUNDS} turns, each submitted by both processes at once under the same turn id: each is folded exactly once`, async () => {
    backend = await openBackend(name);
    const sessionId = randomId('same-turn');
    const userId = randomId('user');
    const workers = ['a', 'b'].map((tag) =>
      spawnWorker<SameTurnReport>('same-turn-worker.mjs', {
        connection: backend?.connection,
        sessionId,
        userId,
        tag,
      }),
    );
    await Promise.all(workers.map((worker) => worker.printed('ready')));
    for (let round = 0; round < ROUNDS; round += 1) {
      const lines = plan(round);
      workers.forEach((worker, index) => {
        worker.send(lines[index] ?? '');
      });
      await Promise.all(workers.map((worker) => worker.printed(`done ${round}`)));
    }
    for (const worker of workers) worker.send('end');
    const results = await Promise.all(workers.map((worker) => worker.done));

    const marks = Array.from({ length: ROUNDS }, (_, round) => `mark ${round}`);
    for (const { exitCode, report, stderr } of results) {
      expect(exitCode, stderr).toBe(0);
      expect(report?.errors, stderr).toEqual([]);
      expect(report?.results).toHaveLength(ROUNDS);
      // An update answers once its turn is folded, into a snapshot holding every turn so far once.
      for (const result of report?.results ?? []) {
        if (result.how === 'schedule') continue;
        expect(result.updated, `round ${result.round}`).toBe(true);
        expect(result.summary?.split('\n'), `round ${result.round}`).toEqual(
          marks.slice(0, result.round + 1),
        );
        expect(result.version).toBe(result.round + 1);
      }
    }

    const stored = await backend.repository.get(sessionId);
    assertValidSnapshot(stored);
    expect(stored?.userId).toBe(userId);
    expect(stored?.summary.split('\n')).toEqual(marks);
    // One version per turn: the duplicate submission never made a fold of its own.
    expect(stored?.version).toBe(ROUNDS);
    expect(await backend.repository.pendingTurns?.(sessionId)).toEqual([]);
    // The two extractors together were given each turn exactly once.
    const seen = new Map<string, number>();
    for (const { report } of results) {
      for (const [mark, count] of Object.entries(report?.seen ?? {})) {
        seen.set(mark, (seen.get(mark) ?? 0) + count);
      }
    }
    // And the race went both ways: each process folded some of the turns.
    for (const { report } of results) {
      expect(Object.keys(report?.seen ?? {}).length, report?.tag).toBeGreaterThan(0);
    }
    expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(marks.map((mark) => [mark, 1])));
  });
});
