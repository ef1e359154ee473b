import type { BenchResults } from './bench.js';
import { formatFactor, formatInteger, formatMicros, formatRatio } from './report.js';

const row = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;

function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const align = headers.map((_, column) => (column === 0 ? '---' : '---:'));
  return [row(headers), row(align), ...rows.map(row)].join('\n');
}

/**
 * The numbers of a run as Markdown tables, for the README. Written next to the JSON as
 * `results/latest.md` so the README can be refreshed by copying, never by retyping.
 */
export function formatMarkdown(results: BenchResults): string {
  const { meta } = results;
  const parts: string[] = [
    `Measured ${meta.startedAt.slice(0, 10)} on ${meta.cpus.count} × ${meta.cpus.model}, Node ${meta.node}, commit ${meta.commit ?? 'unknown'}; load average ${meta.loadAverage.before[0]} before, ${meta.loadAverage.after[0]} after. Latencies in µs; ratio = adapter ops/s ÷ raw ops/s.`,
  ];
  if (results.repositories.length > 0) {
    parts.push(
      '**Repository `get` / compare-and-set `save` vs the raw driver**',
      table(
        [
          'store',
          'op',
          'adapter ops/s',
          'p50',
          'p99',
          'raw ops/s',
          'p50',
          'p99',
          'ratio',
          'target',
        ],
        results.repositories.flatMap((result) =>
          (['get', 'save'] as const).map((operation) => {
            const comparison = result[operation];
            return [
              result.label,
              `\`${operation}\``,
              formatInteger(comparison.adapter.opsPerSec),
              formatMicros(comparison.adapter.p50Us),
              formatMicros(comparison.adapter.p99Us),
              formatInteger(comparison.raw.opsPerSec),
              formatMicros(comparison.raw.p50Us),
              formatMicros(comparison.raw.p99Us),
              `**${formatRatio(comparison.ratio)}**`,
              operation === 'get'
                ? `≥ ${result.target.getRatio.toFixed(1)} ${result.target.met ? '✓' : '✗ missed'}`
                : '—',
            ];
          }),
        ),
      ),
    );
  }
  if (results.update.length > 0) {
    parts.push(
      '**`SessionContextStore.update` without the model** (instant extractor) vs the bare `get` + `save` it makes',
      table(
        ['store', 'update ops/s', 'p50', 'p99', 'get + save p50', 'store adds (p50)'],
        results.update.map((result) => [
          result.label,
          formatInteger(result.update.opsPerSec),
          formatMicros(result.update.p50Us),
          formatMicros(result.update.p99Us),
          formatMicros(result.repositoryFloor.p50Us),
          formatMicros(result.storeOverheadP50Us),
        ]),
      ),
    );
  }
  if (results.cost) {
    parts.push(
      `**What the extractor is sent at turn N** (seeded ${results.cost.turns}-turn conversation; tokens ≈ chars ÷ 4)`,
      table(
        [
          'turn',
          'ctx request',
          'naive request (whole history)',
          'naive ÷ ctx',
          'Σ tokens over turns 1…N: ctx / naive',
        ],
        results.cost.points.map((point) => [
          String(point.turn),
          `${formatInteger(point.ctx.chars)} chars ≈ ${formatInteger(point.ctx.estimatedTokens)} tokens`,
          `${formatInteger(point.naive.chars)} chars ≈ ${formatInteger(point.naive.estimatedTokens)} tokens`,
          formatFactor(point.naiveOverCtx),
          `${formatInteger(point.cumulative.ctxTokens)} / ${formatInteger(point.cumulative.naiveTokens)}`,
        ]),
      ),
    );
  }
  if (results.concurrency.length > 0) {
    const levels = results.concurrency[0]?.parallelSessions.map((point) => point.sessions) ?? [];
    const writers = results.concurrency[0]?.oneSession.map((point) => point.writers) ?? [];
    parts.push(
      '**Concurrency** (updates/s, instant extractor)',
      table(
        [
          'store',
          ...levels.map((count) => `${count} session${count === 1 ? '' : 's'}`),
          ...writers.map((count) => `${count} writers on 1 session: writes/s`),
        ],
        results.concurrency.map((result) => [
          result.label,
          ...result.parallelSessions.map((point) => formatInteger(point.updatesPerSec)),
          ...result.oneSession.map(
            (point) =>
              `${formatInteger(point.writesPerSec)} (${point.extractionsPerTurn.toFixed(2)} extractions/turn${point.failed > 0 ? `; ${point.failed} of ${point.attempted} gave up` : ''})`,
          ),
        ]),
      ),
    );
  }
  if (results.render) {
    const { render } = results;
    parts.push(
      `**Prompt hot path: \`store.render\` (get + render)**; \`renderSessionContext\` alone: p50 ${formatMicros(render.renderOnly.p50Us)} µs`,
      table(
        ['store', 'ops/s', 'p50', 'p99', 'adds to `get` (p50)'],
        render.stores.map((result) => [
          result.label,
          formatInteger(result.render.opsPerSec),
          formatMicros(result.render.p50Us),
          formatMicros(result.render.p99Us),
          formatMicros(result.overheadP50Us),
        ]),
      ),
    );
  }
  const { turnLog } = results;
  if (turnLog.record.length > 0) {
    parts.push(
      `**Turn log: \`recordTurn\` vs a raw insert of the same row** into the same table (${turnLog.record[0]?.turnsPerSession} turns a session; no target)`,
      table(
        ['store', '`recordTurn` ops/s', 'p50', 'p99', 'raw insert ops/s', 'p50', 'p99', 'ratio'],
        turnLog.record.map((result) => [
          result.label,
          formatInteger(result.record.adapter.opsPerSec),
          formatMicros(result.record.adapter.p50Us),
          formatMicros(result.record.adapter.p99Us),
          formatInteger(result.record.raw.opsPerSec),
          formatMicros(result.record.raw.p50Us),
          formatMicros(result.record.raw.p99Us),
          `**${formatRatio(result.record.ratio)}**`,
        ]),
      ),
    );
  }
  if (turnLog.fold.length > 0) {
    const first = turnLog.fold[0];
    parts.push(
      `**Fold throughput: \`store.drain()\`** over ${first?.sessions} sessions × ${first?.turnsPerSession} pending turns (instant extractor)`,
      table(
        ['store', 'turns folded/s', 'sessions/s', 'per session (µs)', 'extractions/turn'],
        turnLog.fold.map((result) => [
          result.label,
          formatInteger(result.turnsPerSec),
          formatInteger(result.sessionsPerSec),
          formatMicros(result.meanSessionUs),
          result.extractionsPerTurn.toFixed(2),
        ]),
      ),
    );
  }
  return `${parts.join('\n\n')}\n`;
}
