import type { BenchResults, TargetOutcome } from './bench.js';
import { formatRatio } from './format.js';
import { buildTables, type ReportTable } from './tables.js';

/** Markdown inline text as the terminal shows it: without code and bold marks. */
const plain = (text: string) => text.replace(/`|\*\*/g, '');

/** A plain-text table with right-aligned numeric columns. */
function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join('  ');
  return [
    line(headers),
    widths.map((width) => '-'.repeat(width)).join('  '),
    ...rows.map(line),
  ].join('\n');
}

function formatSection(table: ReportTable): string {
  const heading = [`${table.section}.`, table.title, table.detail].filter(Boolean).join(' ');
  return [
    `\n${plain(heading)}`,
    formatTable(
      table.headers.map(plain),
      table.rows.map((row) => row.map(plain)),
    ),
    ...(table.notes ?? []).map(plain),
  ].join('\n');
}

function formatIntro({ meta }: BenchResults): string[] {
  return [
    `ctx benchmarks — ${meta.quick ? 'QUICK (smoke test, not for publishing)' : 'full run'} — ${meta.startedAt}`,
    `commit ${meta.commit ?? 'unknown'}; Node ${meta.node}, ${meta.platform}/${meta.arch}, ${meta.cpus.count} × ${meta.cpus.model}; load average before ${meta.loadAverage.before.join(' ')}, after ${meta.loadAverage.after.join(' ')}; heap collected between rounds: ${meta.gcBetweenRounds ? 'yes' : 'no (run with node --expose-gc)'}`,
    'Latencies in microseconds; ratio = adapter ops/s ÷ raw ops/s (higher is better, 1.00 = no overhead).',
  ];
}

const formatTargets = (targets: readonly TargetOutcome[]) =>
  '\nTargets (get throughput vs raw): ' +
  targets
    .map(
      (target) =>
        `${target.store} ${formatRatio(target.ratio)} (≥ ${target.target.toFixed(1)}: ${target.met ? 'met' : 'MISSED'})`,
    )
    .join('; ');

/** The human-readable report of a run for the terminal: one table per section, then the targets. */
export function formatReport(results: BenchResults): string {
  const parts = [...formatIntro(results), ...buildTables(results).map(formatSection)];
  if (results.targets.length > 0) parts.push(formatTargets(results.targets));
  return parts.join('\n');
}
