import type { BenchResults } from './bench.js';
import { buildTables, type ReportTable } from './tables.js';

const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;

function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const align = headers.map((_, column) => (column === 0 ? '---' : '---:'));
  return [line(headers), line(align), ...rows.map(line)].join('\n');
}

function formatSection(table: ReportTable): string {
  const heading = [`**${table.title}**`, table.detail].filter(Boolean).join(' ');
  return [heading, formatTable(table.headers, table.rows), ...(table.notes ?? [])].join('\n\n');
}

function formatIntro({ meta }: BenchResults): string {
  return `Measured ${meta.startedAt.slice(0, 10)} on ${meta.cpus.count} × ${meta.cpus.model}, Node ${meta.node}, commit ${meta.commit ?? 'unknown'}; load average ${meta.loadAverage.before[0]} before, ${meta.loadAverage.after[0]} after. Latencies in µs; ratio = adapter ops/s ÷ raw ops/s.`;
}

/**
 * The numbers of a run as Markdown tables, for the README. Written next to the JSON as
 * `results/latest.md` so the README can be refreshed by copying, never by retyping.
 */
export function formatMarkdown(results: BenchResults): string {
  return `${[formatIntro(results), ...buildTables(results).map(formatSection)].join('\n\n')}\n`;
}
