import type { BenchResults } from './bench.js';
import type { ContentionPoint } from './concurrency.js';
import type { PromptSize } from './cost.js';
import { formatFactor, formatInteger, formatMicros, formatRatio, formatStats } from './format.js';
import type { RepositoryResult } from './repositories.js';
import type { Comparison } from './stats.js';

/**
 * One table of a run, built once and printed by both renderers: the terminal (`report.ts`) and the
 * Markdown for the README (`markdown.ts`). Titles, cells and notes are Markdown inline text (code
 * spans, bold); the terminal prints them without the marks.
 */
export interface ReportTable {
  /** The section it belongs to (`1`, `4a`), numbered as in the bench README. */
  section: string;
  /** What the table shows. */
  title: string;
  /** How it was measured, printed after the title. */
  detail?: string;
  headers: string[];
  /** One array of cells per row: the first names the row, the others are numbers. */
  rows: string[][];
  /** Lines under the table. */
  notes?: string[];
}

/** The headers of `formatStats`'s cells. */
const statsHeaders = (name: string) => [`${name} ops/s`, 'p50', 'p99'];

/** The headers of `comparisonCells`. */
const comparisonHeaders = (adapter: string, raw: string) => [
  ...statsHeaders(adapter),
  ...statsHeaders(raw),
  'ratio',
];

const code = (text: string) => `\`${text}\``;
const strong = (text: string) => `**${text}**`;

/** Adapter ops/s, p50, p99, raw ops/s, p50, p99, ratio. */
const comparisonCells = (comparison: Comparison) => [
  ...formatStats(comparison.adapter),
  ...formatStats(comparison.raw),
  strong(formatRatio(comparison.ratio)),
];

const formatTarget = ({ target }: RepositoryResult) =>
  `≥ ${target.getRatio.toFixed(1)} ${target.met ? '✓' : '✗ missed'}`;

const formatRequest = (size: PromptSize) =>
  `${formatInteger(size.chars)} chars ≈ ${formatInteger(size.estimatedTokens)} tokens`;

const formatFailed = (point: ContentionPoint) =>
  point.failed > 0 ? `${point.failed} of ${point.attempted}` : '0';

function repositoryTable({ repositories }: BenchResults): ReportTable | undefined {
  if (repositories.length === 0) return undefined;
  return {
    section: '1',
    title: 'Repository `get` / compare-and-set `save` vs the raw driver',
    detail: '(interleaved rounds)',
    headers: ['store', 'op', ...comparisonHeaders('adapter', 'raw'), 'target'],
    rows: repositories.flatMap((result) =>
      (['get', 'save'] as const).map((operation) => [
        result.label,
        code(operation),
        ...comparisonCells(result[operation]),
        operation === 'get' ? formatTarget(result) : '—',
      ]),
    ),
  };
}

function updateTable({ update }: BenchResults): ReportTable | undefined {
  if (update.length === 0) return undefined;
  return {
    section: '2',
    title: '`SessionContextStore.update` without the model',
    detail: '(instant extractor) vs the bare `get` + `save` it makes',
    headers: [
      'store',
      ...statsHeaders('update'),
      ...statsHeaders('get + save'),
      'store adds (p50)',
    ],
    rows: update.map((result) => [
      result.label,
      ...formatStats(result.update),
      ...formatStats(result.repositoryFloor),
      formatMicros(result.storeOverheadP50Us),
    ]),
  };
}

function costTable({ cost }: BenchResults): ReportTable | undefined {
  if (!cost) return undefined;
  return {
    section: '3',
    title: 'What the extractor is sent at turn N',
    detail: `(${cost.turns}-turn synthetic conversation, seed ${cost.seed}; tokens ≈ chars ÷ 4)`,
    headers: [
      'turn',
      'transcript chars',
      'ctx request',
      'naive request (whole history)',
      'naive ÷ ctx',
      'Σ tokens over turns 1…N: ctx / naive',
    ],
    rows: cost.points.map((point) => [
      String(point.turn),
      formatInteger(point.transcriptChars),
      formatRequest(point.ctx),
      formatRequest(point.naive),
      formatFactor(point.naiveOverCtx),
      `${formatInteger(point.cumulative.ctxTokens)} / ${formatInteger(point.cumulative.naiveTokens)}`,
    ]),
    notes: [
      `ctx request grew ${formatRatio(cost.ctxGrowth)} from turn ${cost.points[0]?.turn} to ${cost.turns}; naive grew ${formatRatio(cost.naiveGrowth)}. Previous snapshot: ${cost.previousSnapshot}.`,
    ],
  };
}

function parallelSessionsTable({ concurrency }: BenchResults): ReportTable | undefined {
  const first = concurrency[0];
  if (!first) return undefined;
  return {
    section: '4a',
    title: 'Concurrency: updates/s with N sessions updated in parallel',
    detail: '(one store instance, instant extractor)',
    headers: [
      'store',
      ...first.parallelSessions.map(
        ({ sessions }) => `${sessions} session${sessions === 1 ? '' : 's'}`,
      ),
      'p50 / p99 at max',
    ],
    rows: concurrency.map((result) => {
      const last = result.parallelSessions[result.parallelSessions.length - 1];
      return [
        result.label,
        ...result.parallelSessions.map((point) => formatInteger(point.updatesPerSec)),
        last ? `${formatMicros(last.p50Us)} / ${formatMicros(last.p99Us)}` : '—',
      ];
    }),
  };
}

function oneSessionTable({ concurrency }: BenchResults): ReportTable | undefined {
  if (concurrency.length === 0) return undefined;
  return {
    section: '4b',
    title: 'Many writers on one session',
    detail: '(each writer its own `SessionContextStore`; turn log + lease + compare-and-set)',
    headers: [
      'store',
      'writers',
      'writes/s',
      'extractions/turn',
      'retries/write',
      'failed',
      'p50',
      'p99',
    ],
    rows: concurrency.flatMap((result) =>
      result.oneSession.map((point) => [
        result.label,
        String(point.writers),
        formatInteger(point.writesPerSec),
        point.extractionsPerTurn.toFixed(2),
        point.conflictRetriesPerWrite.toFixed(2),
        formatFailed(point),
        formatMicros(point.p50Us),
        formatMicros(point.p99Us),
      ]),
    ),
  };
}

function renderTable({ render }: BenchResults): ReportTable | undefined {
  if (!render) return undefined;
  const { renderOnly, stores } = render;
  return {
    section: '5',
    title: 'Prompt hot path: `store.render(sessionId, { userId })`',
    detail: '= `get` + ownership check + render',
    headers: ['store', ...statsHeaders('render'), 'repository `get` p50', 'render adds (p50)'],
    rows: stores.map((result) => [
      result.label,
      ...formatStats(result.render),
      formatMicros(result.repositoryGet.p50Us),
      formatMicros(result.overheadP50Us),
    ]),
    notes: [
      `\`renderSessionContext\` alone (${stores[0]?.blockChars ?? '?'}-char block): ${formatInteger(renderOnly.opsPerSec)} ops/s, p50 ${formatMicros(renderOnly.p50Us)} µs, p99 ${formatMicros(renderOnly.p99Us)} µs`,
    ],
  };
}

function recordTurnTable({ turnLog }: BenchResults): ReportTable | undefined {
  const first = turnLog.record[0];
  if (!first) return undefined;
  return {
    section: '6a',
    title: 'Turn log: `recordTurn` vs a raw insert of the same row',
    detail: `into the same table (interleaved rounds, ${first.turnsPerSession} turns a session; no target)`,
    headers: ['store', ...comparisonHeaders('`recordTurn`', 'raw insert')],
    rows: turnLog.record.map((result) => [result.label, ...comparisonCells(result.record)]),
  };
}

function foldTable({ turnLog }: BenchResults): ReportTable | undefined {
  const first = turnLog.fold[0];
  if (!first) return undefined;
  return {
    section: '6b',
    title: 'Fold throughput: `store.drain()`',
    detail: `over ${first.sessions} sessions × ${first.turnsPerSession} pending turns, ${first.rounds} drains (instant extractor)`,
    headers: ['store', 'turns folded/s', 'sessions/s', 'per session (µs)', 'extractions/turn'],
    rows: turnLog.fold.map((result) => [
      result.label,
      formatInteger(result.turnsPerSec),
      formatInteger(result.sessionsPerSec),
      formatMicros(result.meanSessionUs),
      result.extractionsPerTurn.toFixed(2),
    ]),
  };
}

const TABLES = [
  repositoryTable,
  updateTable,
  costTable,
  parallelSessionsTable,
  oneSessionTable,
  renderTable,
  recordTurnTable,
  foldTable,
];

/** The tables of a run in section order; a section that did not run has none. */
export function buildTables(results: BenchResults): ReportTable[] {
  return TABLES.map((build) => build(results)).filter(
    (table): table is ReportTable => table !== undefined,
  );
}
