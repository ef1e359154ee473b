import { performance } from 'node:perf_hooks';

/** Throughput and latency of one measured operation. Latencies are in microseconds. */
export interface LatencyStats {
  /** Operations measured (warm-up excluded). */
  ops: number;
  /** Operations per second: `ops` divided by the wall time the measured loops took. */
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
}

/** A measured adapter operation beside its raw-driver equivalent. */
export interface Comparison {
  adapter: LatencyStats;
  raw: LatencyStats;
  /** `adapter.opsPerSec / raw.opsPerSec`: 1 means no overhead, 0.8 means 20 % slower. */
  ratio: number;
  /** `adapter.p50Us - raw.p50Us`: what the adapter adds to a typical call, in microseconds. */
  overheadP50Us: number;
}

/** Collects per-operation latencies (milliseconds) and the wall time of the loops that made them. */
export class Samples {
  readonly #latencies: number[] = [];
  #wallMs = 0;

  add(latencyMs: number): void {
    this.#latencies.push(latencyMs);
  }

  addWall(ms: number): void {
    this.#wallMs += ms;
  }

  get count(): number {
    return this.#latencies.length;
  }

  summarize(): LatencyStats {
    return summarize(this.#latencies, this.#wallMs);
  }
}

/** Nearest-rank percentile of sorted values (`fraction` from 0 to 1). */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)));
  return sorted[rank - 1] as number;
}

const round = (value: number, digits: number) => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

/** Stats of latencies in milliseconds measured over `wallMs` of wall time. */
export function summarize(latenciesMs: readonly number[], wallMs: number): LatencyStats {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    ops: sorted.length,
    opsPerSec: wallMs > 0 ? round((sorted.length / wallMs) * 1000, 0) : 0,
    p50Us: round(percentile(sorted, 0.5) * 1000, 1),
    p99Us: round(percentile(sorted, 0.99) * 1000, 1),
    meanUs: sorted.length > 0 ? round((total / sorted.length) * 1000, 1) : 0,
  };
}

const collectGarbage = (globalThis as { gc?: () => void }).gc;

/** One operation under test; `index` counts calls from 0 so each call can use fresh input. */
export type Operation = (index: number) => Promise<unknown> | unknown;

/**
 * Runs `operation` `count` times in sequence (each call awaited), recording each latency into
 * `samples` unless `samples` is undefined (warm-up). Returns the next index.
 */
export async function runSequential(
  operation: Operation,
  count: number,
  startIndex: number,
  samples?: Samples,
): Promise<number> {
  // With --expose-gc, each measured loop starts with a clean heap, so garbage one side made is not
  // collected on the other side's clock.
  if (samples) collectGarbage?.();
  const loopStart = performance.now();
  let index = startIndex;
  for (let i = 0; i < count; i += 1) {
    const start = performance.now();
    await operation(index);
    const end = performance.now();
    samples?.add(end - start);
    index += 1;
  }
  samples?.addWall(performance.now() - loopStart);
  return index;
}

/** How many calls a measurement makes. */
export interface Plan {
  /** Unmeasured calls of each side before the first round (also used to size the rounds). */
  warmup: number;
  /** Measured rounds; a comparison alternates which side goes first in each round. */
  rounds: number;
  /** Target wall time of one side's part of a round, in milliseconds. */
  roundMs: number;
  /** Bounds of the calls per round derived from `roundMs`. */
  minPerRound: number;
  maxPerRound: number;
}

async function warmUp(
  operation: Operation,
  count: number,
): Promise<{ next: number; msPerCall: number }> {
  const start = performance.now();
  const next = await runSequential(operation, count, 0);
  return { next, msPerCall: (performance.now() - start) / Math.max(1, count) };
}

const callsPerRound = (plan: Plan, msPerCall: number) =>
  Math.min(
    plan.maxPerRound,
    Math.max(plan.minPerRound, Math.round(plan.roundMs / Math.max(msPerCall, 0.000_5))),
  );

/**
 * Measures two implementations of one operation fairly: both are warmed up, then measured in
 * rounds of the same number of calls that alternate which side goes first, so drift (other
 * processes, GC, caches) lands on both sides alike. The calls per round are sized from the slower
 * side's warm-up speed.
 */
export async function compareInterleaved(
  adapter: Operation,
  raw: Operation,
  plan: Plan,
): Promise<Comparison> {
  const adapterSamples = new Samples();
  const rawSamples = new Samples();
  const adapterWarm = await warmUp(adapter, plan.warmup);
  const rawWarm = await warmUp(raw, plan.warmup);
  let adapterIndex = adapterWarm.next;
  let rawIndex = rawWarm.next;
  const perRound = callsPerRound(plan, Math.max(adapterWarm.msPerCall, rawWarm.msPerCall));
  for (let round = 0; round < plan.rounds; round += 1) {
    if (round % 2 === 0) {
      adapterIndex = await runSequential(adapter, perRound, adapterIndex, adapterSamples);
      rawIndex = await runSequential(raw, perRound, rawIndex, rawSamples);
    } else {
      rawIndex = await runSequential(raw, perRound, rawIndex, rawSamples);
      adapterIndex = await runSequential(adapter, perRound, adapterIndex, adapterSamples);
    }
  }
  return compare(adapterSamples.summarize(), rawSamples.summarize());
}

/** Builds a {@link Comparison} from two stats. */
export function compare(adapter: LatencyStats, raw: LatencyStats): Comparison {
  return {
    adapter,
    raw,
    ratio: raw.opsPerSec > 0 ? round(adapter.opsPerSec / raw.opsPerSec, 3) : 0,
    overheadP50Us: round(adapter.p50Us - raw.p50Us, 1),
  };
}

/** Measures one operation alone: warm-up, then `plan.rounds` measured rounds. */
export async function measure(operation: Operation, plan: Plan): Promise<LatencyStats> {
  const samples = new Samples();
  const warm = await warmUp(operation, plan.warmup);
  let index = warm.next;
  const perRound = callsPerRound(plan, warm.msPerCall);
  for (let round = 0; round < plan.rounds; round += 1) {
    index = await runSequential(operation, perRound, index, samples);
  }
  return samples.summarize();
}
