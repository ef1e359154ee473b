import { performance } from 'node:perf_hooks';
import type { TurnInput, TurnLog } from '@ctx/core';
import type { Backend, DatabaseStore, StoreName } from './backends.js';
import { createSnapshotFixture } from './fixtures.js';
import { type Comparison, compareInterleaved, type Plan } from './stats.js';
import { createBenchStore, TURNS } from './update.js';

/** Section 6a: one store's `recordTurn` against a raw insert of the same row. */
export interface RecordResultRow {
  store: DatabaseStore;
  label: string;
  /** `repository.recordTurn` (adapter) vs the raw insert (raw). */
  record: Comparison;
  /** Turns recorded per session before the next session starts (the pending count stays small). */
  turnsPerSession: number;
  /** What the raw side does, in words. */
  raw: string;
}

/** How much work section 6b does. */
export interface FoldPlan {
  /** Sessions with pending turns per drain. */
  sessions: number;
  /** Pending turns of each session (all folded in one extraction: they fit `maxInputChars`). */
  turnsPerSession: number;
  /** Measured drains (an unmeasured one comes first). */
  rounds: number;
}

/** Section 6b: `store.drain()` folding sessions that have pending turns. */
export interface FoldResultRow {
  store: StoreName;
  label: string;
  sessions: number;
  turnsPerSession: number;
  rounds: number;
  /** Turns the measured drains folded (sessions × turnsPerSession × rounds). */
  turns: number;
  /** Turns folded per second of drain wall time. */
  turnsPerSec: number;
  /** Sessions folded per second of drain wall time. */
  sessionsPerSec: number;
  /** Mean wall time of one session's fold within a drain, in microseconds. */
  meanSessionUs: number;
  /** Extractions per folded turn: 1 / turnsPerSession when each session's turns take one. */
  extractionsPerTurn: number;
}

/** Turns per session in 6a: a session's pending count runs 0…3, as with a few turns in flight. */
const TURNS_PER_SESSION = 4;
const USER_ID = 'bench-user';

const round2 = (value: number) => Math.round(value * 100) / 100;

/** A turn log's repository: every store the benchmarks use has one. */
function turnLogOf(backend: Backend): TurnLog {
  const log = backend.repository as Partial<TurnLog>;
  if (typeof log.recordTurn !== 'function' || typeof log.pendingTurns !== 'function') {
    throw new Error(`${backend.label} has no turn log`);
  }
  return log as TurnLog;
}

const turnOf = (index: number): TurnInput => ({
  turnId: `turn-${index}`,
  userId: USER_ID,
  messages: TURNS[index % TURNS.length] ?? [],
});

/**
 * Section 6a on one store: `recordTurn` interleaved with a raw insert of the same row into the
 * same turn-log table (Redis: keys). Each side starts a new session every
 * {@link TURNS_PER_SESSION} turns, so `recordTurn`'s pending bound stays far away. Before
 * measuring it checks that the adapter reads a raw row back as the very turn it was given.
 */
export async function benchRecord(
  backend: Backend,
  plan: Plan,
  prefix: string,
): Promise<RecordResultRow> {
  const { raw } = backend;
  if (!raw || backend.name === 'memory') throw new Error(`${backend.name} has no raw driver`);
  const log = turnLogOf(backend);
  const sessionOf = (side: string, index: number) =>
    `${prefix}:record-${side}:${Math.floor(index / TURNS_PER_SESSION)}`;

  const probe = `${prefix}:record-probe`;
  const recordedAt = Date.now();
  await raw.insertTurn(probe, turnOf(0), recordedAt, 1);
  const [read] = await log.pendingTurns(probe);
  const expected = turnOf(0);
  if (
    read?.turnId !== expected.turnId ||
    read.userId !== expected.userId ||
    JSON.stringify(read.messages) !== JSON.stringify(expected.messages) ||
    read.recordedAt.getTime() !== recordedAt
  ) {
    throw new Error(
      `${backend.label}: the adapter does not read the raw insert back as the same turn; the comparison would be unfair`,
    );
  }

  let rawInserts = 0;
  const record = await compareInterleaved(
    (index) => log.recordTurn(sessionOf('adapter', index), turnOf(index)),
    (index) => {
      rawInserts += 1;
      // Sequences only have to grow within a session; 2 and up, after the probe's 1.
      return raw.insertTurn(sessionOf('raw', index), turnOf(index), Date.now(), index + 2);
    },
    plan,
  );
  const last = rawInserts - 1;
  const pending = await log.pendingTurns(sessionOf('raw', last));
  if (pending.length !== (last % TURNS_PER_SESSION) + 1) {
    throw new Error(`${backend.label}: the raw inserts did not all land`);
  }
  return {
    store: backend.name,
    label: backend.label,
    record,
    turnsPerSession: TURNS_PER_SESSION,
    raw: raw.insertTurnDescription,
  };
}

/**
 * Section 6b on one store: sessions that already have a snapshot each get
 * `plan.turnsPerSession` pending turns (recorded through the repository, off the clock), then one
 * `store.drain()` folds them all with the instant extractor, timed. Throws when a drain folds a
 * different number of turns, leaves a turn pending, or a session's version is not one higher.
 */
export async function benchFold(
  backend: Backend,
  plan: FoldPlan,
  prefix: string,
): Promise<FoldResultRow> {
  const log = turnLogOf(backend);
  let extractions = 0;
  const store = createBenchStore(backend, {}, () => {
    extractions += 1;
  });
  let folded = 0;
  let wallMs = 0;
  let measuredExtractions = 0;
  for (let round = 0; round <= plan.rounds; round += 1) {
    const ids = Array.from(
      { length: plan.sessions },
      (_, index) => `${prefix}:fold-${round}:${index}`,
    );
    for (const sessionId of ids) {
      await backend.repository.save(createSnapshotFixture(sessionId, USER_ID), {
        expectedVersion: null,
      });
      for (let turn = 0; turn < plan.turnsPerSession; turn += 1) {
        await log.recordTurn(sessionId, turnOf(turn));
      }
    }
    (globalThis as { gc?: () => void }).gc?.();
    extractions = 0;
    const start = performance.now();
    const drained = await store.drain({ limit: plan.sessions });
    const elapsed = performance.now() - start;
    if (
      drained.sessions !== plan.sessions ||
      drained.turns !== plan.sessions * plan.turnsPerSession
    ) {
      throw new Error(
        `${backend.label}: a drain over ${plan.sessions} sessions × ${plan.turnsPerSession} pending turns folded ${drained.sessions} sessions and ${drained.turns} turns`,
      );
    }
    for (const sessionId of ids) {
      const stored = await backend.repository.get(sessionId);
      const pending = await log.pendingTurns(sessionId);
      if (stored?.version !== 2 || pending.length > 0) {
        throw new Error(
          `${backend.label}: after the drain ${sessionId} is at version ${stored?.version} with ${pending.length} turns pending: a lost or double fold`,
        );
      }
    }
    // Round 0 warms up connections, statements and the JIT.
    if (round === 0) continue;
    folded += drained.turns;
    wallMs += elapsed;
    measuredExtractions += extractions;
  }
  await store.close();
  const sessions = plan.sessions * plan.rounds;
  return {
    store: backend.name,
    label: backend.label,
    sessions: plan.sessions,
    turnsPerSession: plan.turnsPerSession,
    rounds: plan.rounds,
    turns: folded,
    turnsPerSec: wallMs > 0 ? Math.round((folded / wallMs) * 1000) : 0,
    sessionsPerSec: wallMs > 0 ? Math.round((sessions / wallMs) * 1000) : 0,
    meanSessionUs: sessions > 0 ? Math.round((wallMs / sessions) * 10_000) / 10 : 0,
    extractionsPerTurn: folded > 0 ? round2(measuredExtractions / folded) : 0,
  };
}
