import type { BenchResults } from './bench.js';

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', {
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});

/** `12,345` */
export const formatInteger = (value: number) => integer.format(value);
/** `12.3` */
export const formatMicros = (value: number) => decimal.format(value);
/** `0.91×` */
export const formatRatio = (value: number) => `${value.toFixed(2)}×`;
/** A large factor: `207×`, `19.9×`. */
export const formatFactor = (value: number) =>
  `${value >= 100 ? value.toFixed(0) : value.toFixed(1)}×`;

/** A plain-text table with right-aligned numeric columns. */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): string {
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

/** The human-readable report of a run: one table per section. */
export function formatReport(results: BenchResults): string {
  const parts: string[] = [];
  const { meta } = results;
  parts.push(
    `ctx benchmarks — ${meta.quick ? 'QUICK (smoke test, not for publishing)' : 'full run'} — ${meta.startedAt}`,
    `commit ${meta.commit ?? 'unknown'}; Node ${meta.node}, ${meta.platform}/${meta.arch}, ${meta.cpus.count} × ${meta.cpus.model}; load average before ${meta.loadAverage.before.join(' ')}, after ${meta.loadAverage.after.join(' ')}; heap collected between rounds: ${meta.gcBetweenRounds ? 'yes' : 'no (run with node --expose-gc)'}`,
    'Latencies in microseconds; ratio = adapter ops/s ÷ raw ops/s (higher is better, 1.00 = no overhead).',
  );

  if (results.repositories.length > 0) {
    parts.push(
      '\n1. Repository get / compare-and-set save: adapter vs raw driver (interleaved rounds)',
      formatTable(
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
        results.repositories.flatMap((row) =>
          (['get', 'save'] as const).map((operation) => {
            const comparison = row[operation];
            const target =
              operation === 'get'
                ? `≥ ${row.target.getRatio.toFixed(1)} ${row.target.met ? 'met' : 'MISSED'}`
                : '—';
            return [
              row.label,
              operation,
              formatInteger(comparison.adapter.opsPerSec),
              formatMicros(comparison.adapter.p50Us),
              formatMicros(comparison.adapter.p99Us),
              formatInteger(comparison.raw.opsPerSec),
              formatMicros(comparison.raw.p50Us),
              formatMicros(comparison.raw.p99Us),
              formatRatio(comparison.ratio),
              target,
            ];
          }),
        ),
      ),
    );
  }

  if (results.update.length > 0) {
    parts.push(
      '\n2. SessionContextStore.update with an instant extractor (no model) vs the bare get + save it makes',
      formatTable(
        ['store', 'update ops/s', 'p50', 'p99', 'get+save ops/s', 'p50', 'p99', 'store adds p50'],
        results.update.map((row) => [
          row.label,
          formatInteger(row.update.opsPerSec),
          formatMicros(row.update.p50Us),
          formatMicros(row.update.p99Us),
          formatInteger(row.repositoryFloor.opsPerSec),
          formatMicros(row.repositoryFloor.p50Us),
          formatMicros(row.repositoryFloor.p99Us),
          formatMicros(row.storeOverheadP50Us),
        ]),
      ),
    );
  }

  if (results.cost) {
    const { cost } = results;
    parts.push(
      `\n3. What the extractor is sent at turn N (${cost.turns}-turn synthetic conversation, seed ${cost.seed}; tokens ≈ chars / 4)`,
      formatTable(
        [
          'turn',
          'transcript chars',
          'ctx chars',
          'ctx tokens',
          'naive chars',
          'naive tokens',
          'naive ÷ ctx',
          'Σ ctx tokens',
          'Σ naive tokens',
        ],
        cost.points.map((point) => [
          String(point.turn),
          formatInteger(point.transcriptChars),
          formatInteger(point.ctx.chars),
          formatInteger(point.ctx.estimatedTokens),
          formatInteger(point.naive.chars),
          formatInteger(point.naive.estimatedTokens),
          formatFactor(point.naiveOverCtx),
          formatInteger(point.cumulative.ctxTokens),
          formatInteger(point.cumulative.naiveTokens),
        ]),
      ),
      `ctx request grew ${formatRatio(cost.ctxGrowth)} from turn ${cost.points[0]?.turn} to ${cost.turns}; naive grew ${formatRatio(cost.naiveGrowth)}. Previous snapshot: ${cost.previousSnapshot}.`,
    );
  }

  if (results.concurrency.length > 0) {
    parts.push(
      '\n4a. Concurrency: updates/s with N sessions updated in parallel (one store instance)',
      formatTable(
        [
          'store',
          ...(results.concurrency[0]?.parallelSessions ?? []).map(
            (p) => `${p.sessions} sess ops/s`,
          ),
          'p50 / p99 at max',
        ],
        results.concurrency.map((row) => {
          const last = row.parallelSessions[row.parallelSessions.length - 1];
          return [
            row.label,
            ...row.parallelSessions.map((point) => formatInteger(point.updatesPerSec)),
            last ? `${formatMicros(last.p50Us)} / ${formatMicros(last.p99Us)}` : '—',
          ];
        }),
      ),
      '\n4b. Many writers on one session (each writer its own SessionContextStore; turn log + lease + compare-and-set)',
      formatTable(
        [
          'store',
          'writers',
          'writes/s',
          'extractions/turn',
          'retries/write',
          'failed',
          'p50',
          'p99',
        ],
        results.concurrency.flatMap((row) =>
          row.oneSession.map((point) => [
            row.label,
            String(point.writers),
            formatInteger(point.writesPerSec),
            point.extractionsPerTurn.toFixed(2),
            point.conflictRetriesPerWrite.toFixed(2),
            String(point.failed),
            formatMicros(point.p50Us),
            formatMicros(point.p99Us),
          ]),
        ),
      ),
    );
  }

  if (results.render) {
    const { render } = results;
    parts.push(
      '\n5. Prompt hot path: store.render(sessionId, { userId }) = get + ownership check + render',
      formatTable(
        ['store', 'render ops/s', 'p50', 'p99', 'repo get p50', 'render adds p50'],
        render.stores.map((row) => [
          row.label,
          formatInteger(row.render.opsPerSec),
          formatMicros(row.render.p50Us),
          formatMicros(row.render.p99Us),
          formatMicros(row.repositoryGet.p50Us),
          formatMicros(row.overheadP50Us),
        ]),
      ),
      `renderSessionContext alone (${render.stores[0]?.blockChars ?? '?'}-char block): ${formatInteger(render.renderOnly.opsPerSec)} ops/s, p50 ${formatMicros(render.renderOnly.p50Us)} µs, p99 ${formatMicros(render.renderOnly.p99Us)} µs`,
    );
  }

  const { turnLog } = results;
  if (turnLog.record.length > 0) {
    parts.push(
      `\n6a. Turn log: repository.recordTurn vs a raw insert of the same row into the same table (interleaved rounds, ${turnLog.record[0]?.turnsPerSession} turns a session; no target)`,
      formatTable(
        ['store', 'recordTurn ops/s', 'p50', 'p99', 'raw insert ops/s', 'p50', 'p99', 'ratio'],
        turnLog.record.map((row) => [
          row.label,
          formatInteger(row.record.adapter.opsPerSec),
          formatMicros(row.record.adapter.p50Us),
          formatMicros(row.record.adapter.p99Us),
          formatInteger(row.record.raw.opsPerSec),
          formatMicros(row.record.raw.p50Us),
          formatMicros(row.record.raw.p99Us),
          formatRatio(row.record.ratio),
        ]),
      ),
    );
  }
  if (turnLog.fold.length > 0) {
    const first = turnLog.fold[0];
    parts.push(
      `\n6b. Fold throughput: store.drain() over ${first?.sessions} sessions × ${first?.turnsPerSession} pending turns, ${first?.rounds} drains (instant extractor)`,
      formatTable(
        ['store', 'turns folded/s', 'sessions/s', 'per session µs', 'extractions/turn'],
        turnLog.fold.map((row) => [
          row.label,
          formatInteger(row.turnsPerSec),
          formatInteger(row.sessionsPerSec),
          formatMicros(row.meanSessionUs),
          row.extractionsPerTurn.toFixed(2),
        ]),
      ),
    );
  }

  if (results.targets.length > 0) {
    parts.push(
      '\nTargets (get throughput vs raw): ' +
        results.targets
          .map(
            (target) =>
              `${target.store} ${formatRatio(target.ratio)} (≥ ${target.target.toFixed(1)}: ${target.met ? 'met' : 'MISSED'})`,
          )
          .join('; '),
    );
  }
  return parts.join('\n');
}
