import { type ExecFileSyncOptionsWithStringEncoding, execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import {
  type Backend,
  createBackend,
  DATABASE_STORES,
  type DatabaseStore,
  runId,
  type StoreName,
} from './backends.js';
import { benchConcurrency, type ConcurrencyPlan, type ConcurrencyResult } from './concurrency.js';
import { benchCost, type CostResult } from './cost.js';
import { benchRender, benchRenderOnly, type RenderResultRow } from './render.js';
import { benchRepository, type RepositoryResult } from './repositories.js';
import type { LatencyStats, Plan } from './stats.js';
import {
  benchFold,
  benchRecord,
  type FoldPlan,
  type FoldResultRow,
  type RecordResultRow,
} from './turn-log.js';
import { benchUpdate, type UpdateResultRow } from './update.js';

/** The benchmark sections, in the order of the issue. */
export const SECTIONS = [
  'repositories',
  'update',
  'cost',
  'concurrency',
  'render',
  'turn-log',
] as const;
/** One benchmark section. */
export type Section = (typeof SECTIONS)[number];

/** Options of {@link runBenchmarks}. */
export interface BenchOptions {
  /** Fewer, shorter rounds: a smoke test whose numbers are not for publishing. @default false */
  quick?: boolean;
  /** Database stores to run. @default ['sqlite', 'postgres', 'redis', 'mysql'] */
  stores?: readonly DatabaseStore[];
  /** Sections to run. @default every section */
  sections?: readonly Section[];
  /** Progress lines. @default writes to stderr */
  progress?: (line: string) => void;
}

/** One `get` target and how this run did. */
export interface TargetOutcome {
  store: DatabaseStore;
  operation: 'get';
  target: number;
  ratio: number;
  met: boolean;
}

/** Everything one run measured: written as JSON to `results/latest.json`. */
export interface BenchResults {
  meta: {
    startedAt: string;
    finishedAt: string;
    durationMs: number;
    quick: boolean;
    /** Git commit of the measured code (with `+dirty` when the tree had changes), when known. */
    commit: string | null;
    /** Whether the heap was collected before every measured loop (`node --expose-gc`). */
    gcBetweenRounds: boolean;
    node: string;
    platform: string;
    arch: string;
    cpus: { count: number; model: string };
    loadAverage: { before: number[]; after: number[] };
    stores: DatabaseStore[];
    sections: Section[];
    plans: {
      repository: Plan;
      store: Plan;
      concurrency: ConcurrencyPlan;
      costCheckpoints: number[];
      fold: FoldPlan;
    };
    units: string;
  };
  repositories: RepositoryResult[];
  update: UpdateResultRow[];
  cost: CostResult | null;
  concurrency: ConcurrencyResult[];
  render: { renderOnly: LatencyStats; stores: RenderResultRow[] } | null;
  /** Section 6: `recordTurn` vs a raw insert (database stores), and fold throughput of `drain`. */
  turnLog: { record: RecordResultRow[]; fold: FoldResultRow[] };
  targets: TargetOutcome[];
}

const FULL_REPOSITORY_PLAN: Plan = {
  warmup: 1000,
  rounds: 20,
  roundMs: 200,
  minPerRound: 50,
  maxPerRound: 50_000,
};
const QUICK_REPOSITORY_PLAN: Plan = {
  warmup: 50,
  rounds: 4,
  roundMs: 25,
  minPerRound: 10,
  maxPerRound: 2_000,
};
const FULL_STORE_PLAN: Plan = { ...FULL_REPOSITORY_PLAN, warmup: 500, rounds: 10, roundMs: 200 };
const QUICK_STORE_PLAN: Plan = QUICK_REPOSITORY_PLAN;
const FULL_CONCURRENCY: ConcurrencyPlan = {
  sessions: [1, 8, 64],
  updatesPerLevel: 3_000,
  writers: [8, 32],
  writesPerLevel: 600,
  maxConflictRetries: 100,
};
const QUICK_CONCURRENCY: ConcurrencyPlan = {
  sessions: [1, 8, 64],
  updatesPerLevel: 128,
  writers: [8, 32],
  writesPerLevel: 64,
  maxConflictRetries: 100,
};
const COST_CHECKPOINTS = [10, 100, 1000];
const FULL_FOLD: FoldPlan = { sessions: 200, turnsPerSession: 4, rounds: 5 };
const QUICK_FOLD: FoldPlan = { sessions: 16, turnsPerSession: 4, rounds: 2 };

function gitCommit(): string | null {
  try {
    const options: ExecFileSyncOptionsWithStringEncoding = {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    };
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], options).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], options).trim() !== '';
    return dirty ? `${commit}+dirty` : commit;
  } catch {
    return null;
  }
}

const round2 = (values: number[]) => values.map((value) => Math.round(value * 100) / 100);

/**
 * Runs the benchmark sections against the real services and returns the results. Every store is
 * set up in a private namespace (temp file, random schema, random key prefix) and cleaned up
 * afterwards, also on failure. Throws when a service is unreachable.
 */
export async function runBenchmarks(options: BenchOptions = {}): Promise<BenchResults> {
  const quick = options.quick ?? false;
  const stores = [...(options.stores ?? DATABASE_STORES)];
  const sections = [...(options.sections ?? SECTIONS)];
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const repositoryPlan = quick ? QUICK_REPOSITORY_PLAN : FULL_REPOSITORY_PLAN;
  const storePlan = quick ? QUICK_STORE_PLAN : FULL_STORE_PLAN;
  const concurrencyPlan = quick ? QUICK_CONCURRENCY : FULL_CONCURRENCY;
  const foldPlan = quick ? QUICK_FOLD : FULL_FOLD;
  const started = Date.now();
  const before = round2(loadavg());
  const prefix = `bench-${runId()}`;
  const has = (section: Section) => sections.includes(section);

  const results: BenchResults = {
    meta: {
      startedAt: new Date(started).toISOString(),
      finishedAt: '',
      durationMs: 0,
      quick,
      commit: gitCommit(),
      gcBetweenRounds: typeof (globalThis as { gc?: unknown }).gc === 'function',
      node: process.versions.node,
      platform: process.platform,
      arch: process.arch,
      cpus: { count: cpus().length, model: cpus()[0]?.model.trim() ?? 'unknown' },
      loadAverage: { before, after: [] },
      stores,
      sections,
      plans: {
        repository: repositoryPlan,
        store: storePlan,
        concurrency: concurrencyPlan,
        costCheckpoints: COST_CHECKPOINTS,
        fold: foldPlan,
      },
      units:
        'latencies in microseconds (p50/p99 nearest rank over every measured call); ops/s = measured calls ÷ wall time of their loops; ratio = adapter ops/s ÷ raw ops/s; tokens ≈ ceil(chars / 4)',
    },
    repositories: [],
    update: [],
    cost: null,
    concurrency: [],
    render: null,
    turnLog: { record: [], fold: [] },
    targets: [],
  };

  if (has('cost')) {
    progress('cost: running the extractive extractor through the synthetic conversation…');
    results.cost = await benchCost(COST_CHECKPOINTS);
  }
  if (has('render')) {
    results.render = { renderOnly: await benchRenderOnly(storePlan), stores: [] };
  }

  const storeNames: StoreName[] = [...stores];
  if (has('update') || has('render') || has('concurrency') || has('turn-log')) {
    storeNames.push('memory');
  }
  for (const name of storeNames) {
    let backend: Backend;
    try {
      backend = await createBackend(name);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new Error(
        `Cannot set up the ${name} store for the benchmarks: ${detail}. Start the service (see scripts/services.sh) or set CTX_POSTGRES_URL / CTX_REDIS_URL`,
        { cause: error },
      );
    }
    const storePrefix = `${prefix}:${name}`;
    try {
      if (has('repositories') && name !== 'memory') {
        progress(`${backend.label}: repository get/save vs raw driver…`);
        const row = await benchRepository(backend, repositoryPlan, storePrefix);
        results.repositories.push(row);
        results.targets.push({
          store: row.store,
          operation: 'get',
          target: row.target.getRatio,
          ratio: row.get.ratio,
          met: row.target.met,
        });
      }
      if (has('update')) {
        progress(`${backend.label}: SessionContextStore.update…`);
        results.update.push(await benchUpdate(backend, storePlan, storePrefix));
      }
      if (has('render') && results.render) {
        progress(`${backend.label}: store.render…`);
        results.render.stores.push(await benchRender(backend, storePlan, storePrefix));
      }
      if (has('concurrency')) {
        progress(`${backend.label}: concurrency…`);
        results.concurrency.push(await benchConcurrency(backend, concurrencyPlan, storePrefix));
      }
      if (has('turn-log')) {
        // Folds first: the record comparison leaves thousands of pending turns behind, which a
        // drain would otherwise pick up.
        progress(`${backend.label}: fold throughput of drain…`);
        results.turnLog.fold.push(await benchFold(backend, foldPlan, storePrefix));
        if (name !== 'memory') {
          progress(`${backend.label}: recordTurn vs raw insert…`);
          results.turnLog.record.push(await benchRecord(backend, repositoryPlan, storePrefix));
        }
      }
    } finally {
      await backend.cleanup();
    }
  }

  const finished = Date.now();
  results.meta.finishedAt = new Date(finished).toISOString();
  results.meta.durationMs = finished - started;
  results.meta.loadAverage.after = round2(loadavg());
  return results;
}
