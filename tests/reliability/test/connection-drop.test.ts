import { performance } from 'node:perf_hooks';
import {
  ContextError,
  type ContextExtractor,
  SessionContextStore,
  type UpdateInput,
  type UpdateResult,
} from '@ctx/core';
import { afterAll, describe, expect, it } from 'vitest';
import { randomId } from './helpers/backends.js';
import {
  type DroppableBackend,
  type DroppableBackendName,
  openDroppableBackend,
} from './helpers/connection-drops.js';
import { type CutPlan, ReplyCutter } from './helpers/reply-cutter.js';

// The server drops the repository's connection while `update` is in flight (PostgreSQL
// pg_terminate_backend, Redis CLIENT KILL, MySQL KILL CONNECTION; the shared servers keep
// running). The caller gets a typed error while its turn may or may not be stored; retrying the
// same turn id must fold that turn exactly once. Each round kills at another moment of the update
// (stratified over its measured duration), so the drop lands before the record, inside it, or in
// the fold. A kill rarely lands between a commit and its reply (PostgreSQL answers before it acts
// on the signal; MySQL sometimes commits a COMMIT its killed thread was running), so the second
// test makes that case certain: a proxy swallows the reply of a committed record or save.

const ROUNDS = 40;
/** Extra rounds, at the start of an update, when no drop has yet landed before the record. */
const EXTRA_ROUNDS = 40;
/** How early, as a share of an update's duration, a kill may be sent before the update starts. */
const LEAD = 0.3;
const BACKENDS: DroppableBackendName[] = ['postgres', 'redis', 'mysql'];
const STORAGE_CODES = ['STORAGE_UNAVAILABLE', 'STORAGE_ERROR'];
/** Rounds of the lost-reply test (half lose the record's reply, half the save's). */
const CUT_ROUNDS = 12;

/** What the drop did to the turn, as seen on a healthy connection before the retry. */
type Outcome = 'not-recorded' | 'recorded-pending' | 'folded-unacknowledged' | 'acknowledged';

interface Extraction {
  id: number;
  marks: string[];
}

/**
 * Appends each folded turn's mark to the previous summary as `<mark> @<extraction id>`, so the
 * summary tells which extraction folded which turn, and logs every extraction.
 */
function createLoggingAppender(log: Extraction[]): ContextExtractor {
  return {
    async extract(request) {
      const id = log.length + 1;
      const marks = request.messages.map((message) => message.content);
      log.push({ id, marks });
      const lines = marks.map((mark) => `${mark} @${id}`);
      return {
        draft: { summary: [request.previous?.summary, ...lines].filter(Boolean).join('\n') },
      };
    },
  };
}

/** Waits `ms` without blocking the event loop, more finely than a timer's millisecond. */
async function spin(ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) await new Promise((resolve) => setImmediate(resolve));
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** Retries a typed storage failure (a pool may still hand out a connection the kill closed). */
async function updateUntilDone(
  store: SessionContextStore,
  input: UpdateInput,
): Promise<{ result: UpdateResult; failures: number }> {
  for (let failures = 0; ; failures += 1) {
    try {
      return { result: await store.update(input), failures };
    } catch (error) {
      if (!ContextError.isInstance(error) || !STORAGE_CODES.includes(error.code) || failures > 20) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

describe.each(BACKENDS)('%s: the connection dropped mid-update', (name) => {
  let backend: DroppableBackend | undefined;
  afterAll(async () => {
    await backend?.dispose();
  });

  it(`${ROUNDS} drops at random moments of an update: the caller gets a typed error, and retrying the same turn id folds the turn exactly once`, async () => {
    backend = await openDroppableBackend(name);
    const extractions: Extraction[] = [];
    const extractor = createLoggingAppender(extractions);
    // A fold that lost its connection may not release its lease: keep the lease short.
    const config = { fold: { leaseTtlMs: 300 }, extractionTimeoutMs: 10_000 };
    const victim = new SessionContextStore({ repository: backend.victim, extractor, config });
    const healthy = new SessionContextStore({ repository: backend.healthy, extractor, config });
    const userId = randomId('user');
    const sessionId = randomId('drop');

    // How long an update takes here, so the drops can be spread over it.
    const durations: number[] = [];
    for (let index = 0; index < 9; index += 1) {
      await backend.arm();
      const started = performance.now();
      await victim.update({
        sessionId: randomId('warm-up'),
        userId,
        messages: [{ role: 'user', content: 'warm-up' }],
      });
      durations.push(performance.now() - started);
    }
    const span = median(durations);
    extractions.length = 0;

    const outcomes: Outcome[] = [];
    const errorCodes = new Map<string, number>();
    const marks: string[] = [];
    let wasted = 0;
    for (let round = 0; round < ROUNDS + EXTRA_ROUNDS; round += 1) {
      const before = outcomes.includes('not-recorded');
      const after = outcomes.some((outcome) => outcome !== 'not-recorded');
      if (round >= ROUNDS && before && after) break;
      const mark = `mark ${round}`;
      const input: UpdateInput = {
        sessionId,
        userId,
        turnId: `${sessionId}:turn-${round}`,
        messages: [{ role: 'user', content: mark }],
      };
      marks.push(mark);
      await backend.arm();
      // Stratified: round r sends the kill in the r-th slice of [-LEAD, 1] × the update's duration
      // (a kill sent a moment before the update starts is still on its way when the update's
      // first statements run). Extra rounds aim at the start, before the turn is recorded.
      const fraction =
        round < ROUNDS
          ? -LEAD + ((round + Math.random()) / ROUNDS) * (1 + LEAD)
          : -LEAD * Math.random();
      let attempt: Promise<unknown> | undefined;
      const start = () => {
        attempt = victim.update(input).then(
          () => undefined,
          (error: unknown) => error,
        );
      };
      if (fraction >= 0) {
        start();
        await spin(fraction * span);
        await backend.kill();
      } else {
        const killing = backend.kill();
        await spin(-fraction * span);
        start();
        await killing;
      }
      const error = await attempt;
      await backend.settle();

      const seenBefore = extractions.filter((entry) => entry.marks.includes(mark)).length;
      const stored = await backend.healthy.get(sessionId);
      const pending = (await backend.healthy.pendingTurns?.(sessionId)) ?? [];
      let outcome: Outcome = 'acknowledged';
      if (error !== undefined) {
        expect(ContextError.isInstance(error), String(error)).toBe(true);
        const code = (error as ContextError).code;
        expect(STORAGE_CODES, `round ${round}: ${String(error)}`).toContain(code);
        errorCodes.set(code, (errorCodes.get(code) ?? 0) + 1);
        if (stored?.summary.split('\n').some((line) => line.startsWith(`${mark} @`))) {
          outcome = 'folded-unacknowledged';
        } else if (pending.some((turn) => turn.turnId === input.turnId)) {
          outcome = 'recorded-pending';
        } else {
          outcome = 'not-recorded';
        }
      }
      outcomes.push(outcome);

      // The retry, on a healthy connection: another store on its own connections, or the same
      // store once its pool or client has replaced the dropped connection.
      const retrier = round % 2 === 0 ? healthy : victim;
      const { result, failures } = await updateUntilDone(retrier, input);
      expect(result.updated, `round ${round} (${outcome})`).toBe(true);

      // Folded exactly once: every mark so far on one line each, in order, one version a turn.
      const lines = result.context?.summary.split('\n') ?? [];
      expect(
        lines.map((line) => line.replace(/ @\d+$/, '')),
        `round ${round} (${outcome})`,
      ).toEqual(marks);
      expect(result.context?.version).toBe(marks.length);
      expect(await backend.healthy.pendingTurns?.(sessionId)).toEqual([]);

      // The extractor: the extraction that folded the turn is the last one that saw it; earlier
      // ones were lost with a fold whose save never committed (at most one per failed attempt).
      const folder = Number(/ @(\d+)$/.exec(lines[lines.length - 1] ?? '')?.[1]);
      const saw = extractions.filter((entry) => entry.marks.includes(mark));
      expect(saw.at(-1)?.id, `round ${round} (${outcome})`).toBe(folder);
      expect(saw.length).toBeLessThanOrEqual(1 + (error === undefined ? 0 : 1) + failures);
      if (outcome === 'acknowledged' || outcome === 'folded-unacknowledged') {
        // Already folded: the retry is a no-op that never calls the extractor.
        expect(saw.length, `round ${round} (${outcome})`).toBe(1);
      } else if (failures === 0) {
        expect(saw.length, `round ${round} (${outcome})`).toBe(seenBefore + 1);
      }
      wasted += saw.length - 1;
    }

    const count = (outcome: Outcome) => outcomes.filter((entry) => entry === outcome).length;
    const tally = `update ≈ ${span.toFixed(2)} ms; ${outcomes.length} rounds: ${count('not-recorded')} not recorded, ${count('recorded-pending')} recorded and pending, ${count('folded-unacknowledged')} folded but unacknowledged, ${count('acknowledged')} acknowledged; errors ${JSON.stringify(Object.fromEntries(errorCodes))}; ${wasted} extractions lost with an uncommitted save`;
    console.info(`${name}: ${tally}`);
    // Both sides of the drop happened: before the turn was stored, and after.
    expect(count('not-recorded'), tally).toBeGreaterThan(0);
    expect(count('recorded-pending') + count('folded-unacknowledged'), tally).toBeGreaterThan(0);
    // Nothing is left for a drain, and the session holds exactly one line per turn.
    expect(await healthy.drain()).toEqual({ sessions: 0, turns: 0 });
    const final = await healthy.get(sessionId, { userId });
    expect(final?.summary.split('\n')).toHaveLength(marks.length);
  });
  it(`the reply of a committed record, or of a committed save, is lost (${CUT_ROUNDS} rounds): retrying the same turn id folds the turn exactly once`, async () => {
    backend ??= await openDroppableBackend(name);
    const cutter = await ReplyCutter.start(backend.server);
    try {
      const extractions: Extraction[] = [];
      const extractor = createLoggingAppender(extractions);
      const config = { fold: { leaseTtlMs: 300 }, extractionTimeoutMs: 10_000 };
      const cut = new SessionContextStore({
        repository: backend.openVia(cutter.port),
        extractor,
        config,
      });
      const healthy = new SessionContextStore({ repository: backend.healthy, extractor, config });
      const userId = randomId('user');
      const sessionId = randomId('lost-reply');
      const marks: string[] = [];
      for (let round = 0; round < CUT_ROUNDS; round += 1) {
        const lost = round % 2 === 0 ? 'record' : 'save';
        const mark = `mark ${round}`;
        const input: UpdateInput = {
          sessionId,
          userId,
          turnId: `${sessionId}:turn-${round}`,
          messages: [{ role: 'user', content: mark }],
        };
        // The record is the first request naming the turn id; the save the first holding its
        // summary line. PostgreSQL and MySQL record in a transaction, and MySQL saves in one: their
        // reply to lose is COMMIT's.
        const plan: CutPlan =
          lost === 'record'
            ? { marker: input.turnId ?? '', ...(name === 'redis' ? {} : { followedBy: 'COMMIT' }) }
            : { marker: `${mark} @`, ...(name === 'mysql' ? { followedBy: 'COMMIT' } : {}) };
        cutter.arm(plan);
        const error = await cut.update(input).then(
          () => undefined,
          (failure: unknown) => failure,
        );
        expect(cutter.cuts, `round ${round}: the ${lost} reply was cut`).toBe(round + 1);
        expect(ContextError.isInstance(error), String(error)).toBe(true);
        expect(STORAGE_CODES).toContain((error as ContextError).code);

        // The server did what the lost reply would have said.
        const stored = await backend.healthy.get(sessionId);
        const pending = (await backend.healthy.pendingTurns?.(sessionId)) ?? [];
        const storedMarks = stored?.summary.split('\n').map((line) => line.replace(/ @\d+$/, ''));
        if (lost === 'record') {
          expect(pending.map((turn) => turn.turnId)).toEqual([input.turnId]);
          expect(storedMarks ?? []).toEqual(marks);
        } else {
          expect(pending).toEqual([]);
          expect(storedMarks).toEqual([...marks, mark]);
        }
        marks.push(mark);

        const retrier = round % 4 < 2 ? healthy : cut;
        const { result } = await updateUntilDone(retrier, input);
        expect(result.updated).toBe(true);
        const lines = result.context?.summary.split('\n') ?? [];
        expect(lines.map((line) => line.replace(/ @\d+$/, ''))).toEqual(marks);
        expect(result.context?.version).toBe(marks.length);
        expect(await backend.healthy.pendingTurns?.(sessionId)).toEqual([]);
        // One extraction: before the lost save's reply, or by the retry after the lost record's.
        const saw = extractions.filter((entry) => entry.marks.includes(mark));
        expect(
          saw.map((entry) => entry.id),
          `round ${round} (${lost})`,
        ).toHaveLength(1);
      }
      expect(await healthy.drain()).toEqual({ sessions: 0, turns: 0 });
    } finally {
      await cutter.close();
    }
  });
});
