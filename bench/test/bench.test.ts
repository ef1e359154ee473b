import { beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_STORES } from '../src/backends.js';
import { type BenchResults, runBenchmarks } from '../src/bench.js';
import { createConversation } from '../src/fixtures.js';
import { formatMarkdown } from '../src/markdown.js';
import { formatReport } from '../src/report.js';
import { type LatencyStats, percentile, summarize } from '../src/stats.js';

const isStats = (value: unknown): value is LatencyStats =>
  typeof value === 'object' &&
  value !== null &&
  'opsPerSec' in value &&
  'p50Us' in value &&
  'p99Us' in value;

// Every LatencyStats anywhere in the results, with its path for failure messages.
function collectStats(value: unknown, path = '$'): Array<[string, LatencyStats]> {
  if (isStats(value)) return [[path, value]];
  if (Array.isArray(value))
    return value.flatMap((item, index) => collectStats(item, `${path}[${index}]`));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([key, item]) => collectStats(item, `${path}.${key}`));
  }
  return [];
}

describe('stats', () => {
  it('takes nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 100 }, (_, index) => index + 1);
    expect(percentile(sorted, 0.5)).toBe(50);
    expect(percentile(sorted, 0.99)).toBe(99);
    expect(percentile([7], 0.99)).toBe(7);
  });

  it('summarizes milliseconds as microseconds and ops/s from wall time', () => {
    const stats = summarize([0.01, 0.02, 0.03, 0.04], 0.2);
    expect(stats).toMatchObject({ ops: 4, opsPerSec: 20_000, p50Us: 20, p99Us: 40, meanUs: 25 });
  });
});

describe('synthetic conversation', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    expect(createConversation(50, 1)).toEqual(createConversation(50, 1));
    expect(createConversation(50, 1)).not.toEqual(createConversation(50, 2));
    expect(createConversation(50, 1)).toHaveLength(50);
  });
});

describe('runBenchmarks --quick against the real services', () => {
  let results: BenchResults;

  beforeAll(async () => {
    const run = await runBenchmarks({ quick: true, progress: () => undefined });
    // What main.ts writes: the results must survive JSON unchanged.
    results = JSON.parse(JSON.stringify(run)) as BenchResults;
  });

  it('runs every section on every store', () => {
    const stores = [...DATABASE_STORES];
    expect(results.meta.quick).toBe(true);
    expect(results.repositories.map((row) => row.store)).toEqual(stores);
    expect(results.update.map((row) => row.store)).toEqual([...stores, 'memory']);
    expect(results.render?.stores.map((row) => row.store)).toEqual([...stores, 'memory']);
    expect(results.concurrency.map((row) => row.store)).toEqual([...stores, 'memory']);
    expect(results.cost?.points.map((point) => point.turn)).toEqual([10, 100, 1000]);
    expect(results.targets.map((target) => target.store)).toEqual(stores);
    expect(results.turnLog.record.map((row) => row.store)).toEqual(stores);
    expect(results.turnLog.fold.map((row) => row.store)).toEqual([...stores, 'memory']);
  });

  it('reports positive throughput and p99 ≥ p50 for every measurement', () => {
    const all = collectStats(results);
    // repositories: 2 ops × 2 sides × 4 stores; update, render: 2 × 5 stores; render alone: 1;
    // turn log record: 2 sides × 4 stores
    const stores = DATABASE_STORES.length;
    expect(all.length).toBe(4 * stores + 2 * (stores + 1) + 2 * (stores + 1) + 1 + 2 * stores);
    for (const [path, stats] of all) {
      expect(stats.ops, path).toBeGreaterThan(0);
      expect(stats.opsPerSec, path).toBeGreaterThan(0);
      expect(stats.p50Us, path).toBeGreaterThan(0);
      expect(stats.p99Us, path).toBeGreaterThanOrEqual(stats.p50Us);
    }
  });

  it('computes adapter/raw ratios from the measured throughputs', () => {
    for (const row of results.repositories) {
      for (const comparison of [row.get, row.save]) {
        expect(comparison.ratio).toBeCloseTo(
          comparison.adapter.opsPerSec / comparison.raw.opsPerSec,
          2,
        );
      }
      expect(row.raw.get.length).toBeGreaterThan(20);
      expect(row.target.met).toBe(row.get.ratio >= row.target.getRatio);
    }
  });

  it('keeps the ctx request flat while the naive request grows with the conversation', () => {
    const cost = results.cost;
    if (!cost) throw new Error('no cost section');
    const [at10, at100, at1000] = cost.points;
    if (!at10 || !at100 || !at1000) throw new Error('missing checkpoints');
    expect(at1000.ctx.chars).toBeLessThan(at10.ctx.chars * 2);
    expect(at1000.ctx.chars).toBeGreaterThan(at10.ctx.chars / 2);
    expect(at1000.naive.chars).toBeGreaterThan(at10.naive.chars * 50);
    expect(at100.naive.chars).toBeGreaterThan(at10.naive.chars * 5);
    expect(at1000.naive.chars).toBeGreaterThan(at1000.ctx.chars * 100);
    expect(at1000.ctx.estimatedTokens).toBe(Math.ceil(at1000.ctx.chars / 4));
    expect(at1000.previousSummaryChars).toBeLessThanOrEqual(1200);
    expect(at1000.cumulative.naiveTokens).toBeGreaterThan(at1000.cumulative.ctxTokens * 50);
  });

  it('measures every concurrency level and accounts for every write', () => {
    for (const row of results.concurrency) {
      expect(row.parallelSessions.map((point) => point.sessions)).toEqual([1, 8, 64]);
      for (const point of row.parallelSessions) {
        expect(point.updatesPerSec, row.store).toBeGreaterThan(0);
        expect(point.updates).toBeGreaterThanOrEqual(point.sessions * 2);
        expect(point.p99Us).toBeGreaterThanOrEqual(point.p50Us);
      }
      expect(row.oneSession.map((point) => point.writers)).toEqual([8, 32]);
      for (const point of row.oneSession) {
        // benchConcurrency itself throws on a lost or double fold (a turn left pending, or a stored
        // version that is not one per extraction).
        expect(point.writes + point.failed, row.store).toBe(point.attempted);
        expect(point.failed, row.store).toBe(0);
        expect(point.writesPerSec).toBeGreaterThan(0);
        // The turn log's target: concurrent turns share extractions, never pay one per lost race.
        expect(point.extractionsPerTurn, row.store).toBeGreaterThan(0);
        expect(point.extractionsPerTurn, row.store).toBeLessThanOrEqual(1);
      }
    }
  });

  it('compares recordTurn with a raw insert and folds every pending turn once per drain', () => {
    for (const row of results.turnLog.record) {
      expect(row.record.ratio, row.store).toBeCloseTo(
        row.record.adapter.opsPerSec / row.record.raw.opsPerSec,
        2,
      );
      expect(row.raw.length).toBeGreaterThan(20);
      expect(row.turnsPerSession).toBeGreaterThan(0);
    }
    const plan = results.meta.plans.fold;
    for (const row of results.turnLog.fold) {
      expect(row.sessions, row.store).toBe(plan.sessions);
      // benchFold itself throws on a drain that folds another number of turns, leaves a turn
      // pending, or moves a session by more than one version.
      expect(row.turns, row.store).toBe(plan.sessions * plan.turnsPerSession * plan.rounds);
      expect(row.turnsPerSec, row.store).toBeGreaterThan(0);
      expect(row.sessionsPerSec, row.store).toBeGreaterThan(0);
      expect(row.turnsPerSec).toBeGreaterThanOrEqual(row.sessionsPerSec);
      expect(row.meanSessionUs, row.store).toBeGreaterThan(0);
      // A session's pending turns fit one extraction: one model call per session, not per turn.
      expect(row.extractionsPerTurn, row.store).toBeCloseTo(1 / plan.turnsPerSession, 2);
    }
  });

  it('prints a table for every section', () => {
    const report = formatReport(results);
    for (const heading of [
      '1. Repository',
      '2. SessionContextStore.update',
      '3. What the extractor',
      '4a.',
      '4b.',
      '5. Prompt hot path',
      '6a. Turn log',
      '6b. Fold throughput',
    ]) {
      expect(report).toContain(heading);
    }
    expect(report).toContain('QUICK');
    const markdown = formatMarkdown(results);
    for (const heading of ['`recordTurn` vs a raw insert', 'Fold throughput']) {
      expect(markdown).toContain(heading);
    }
  });
});
