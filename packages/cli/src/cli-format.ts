import type { RecordedTurn, SessionContext } from '@ctx/core';
import { toSingleLine } from '@ctx/core/adapter';

/** Summary excerpt width when the output is not a terminal (or its width is unknown). */
const DEFAULT_EXCERPT_WIDTH = 60;
const MIN_EXCERPT_WIDTH = 20;
/** Width of the first user message's excerpt in `ctx pending`. */
const TURN_EXCERPT_WIDTH = 80;

/** `2026-01-01T10:00:00Z`: ISO 8601 in UTC, without milliseconds. */
export function formatTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** Shortens `text` to at most `width` characters, marking a cut with `…`. */
export function truncate(text: string, width: number): string {
  const characters = [...text];
  if (characters.length <= width) return text;
  return `${characters
    .slice(0, Math.max(0, width - 1))
    .join('')
    .trimEnd()}…`;
}

function visibleLength(text: string): number {
  return [...text].length;
}

/** `text` with control characters (a terminal's escape sequences) shown as `�`. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '\ufffd');
}

/** Cells padded to the widest of their column, two spaces apart; the last cell is not padded. */
function alignColumns(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, column) => {
      widths[column] = Math.max(widths[column] ?? 0, visibleLength(cell));
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, column) =>
          column === row.length - 1
            ? cell
            : cell + ' '.repeat((widths[column] ?? 0) - visibleLength(cell)),
        )
        .join('  '),
    )
    .join('\n');
}

/**
 * The `pending` table, oldest turn first: turn id, user, when it was recorded, how many messages
 * and characters (UTF-16 code units, as `fold.maxInputChars` counts them) it has, and the start of
 * its first user message.
 */
export function formatPendingTurns(turns: RecordedTurn[]): string {
  const rows = turns.map((turn) => {
    const firstUserMessage = turn.messages.find((message) => message.role === 'user');
    const characters = turn.messages.reduce((total, message) => total + message.content.length, 0);
    return [
      printable(turn.turnId),
      turn.userId === null ? '-' : printable(turn.userId),
      formatTimestamp(turn.recordedAt),
      String(turn.messages.length),
      String(characters),
      firstUserMessage === undefined
        ? '(no user message)'
        : truncate(printable(toSingleLine(firstUserMessage.content)), TURN_EXCERPT_WIDTH) ||
          '(empty)',
    ];
  });
  return alignColumns([
    ['TURN', 'USER', 'RECORDED', 'MESSAGES', 'CHARACTERS', 'FIRST USER MESSAGE'],
    ...rows,
  ]);
}

/**
 * The `list` table: one row per session (id, user, version, updated, summary excerpt), columns
 * aligned. On a terminal of known width the excerpt fills the rest of the line.
 */
export function formatListTable(items: SessionContext[], terminalColumns?: number): string {
  const header = ['ID', 'USER', 'VERSION', 'UPDATED'];
  const rows = items.map((item) => [
    item.sessionId,
    item.userId ?? '-',
    String(item.version),
    formatTimestamp(item.updatedAt),
  ]);
  const widths = header.map((title, column) =>
    Math.max(visibleLength(title), ...rows.map((row) => visibleLength(row[column] ?? ''))),
  );
  const pad = (cells: string[]) =>
    cells.map((cell, column) => cell + ' '.repeat((widths[column] ?? 0) - visibleLength(cell)));
  const used = widths.reduce((sum, width) => sum + width + 2, 0);
  const excerptWidth =
    terminalColumns !== undefined && terminalColumns > 0
      ? Math.max(MIN_EXCERPT_WIDTH, terminalColumns - used - 1)
      : DEFAULT_EXCERPT_WIDTH;
  const lines = [[...pad(header), 'SUMMARY'].join('  ')];
  items.forEach((item, index) => {
    const excerpt = truncate(toSingleLine(item.summary), excerptWidth) || '(empty)';
    lines.push([...pad(rows[index] ?? []), excerpt].join('  '));
  });
  return lines.join('\n');
}

/**
 * The `get` view: every stored field, one per line, labels aligned; lists, custom fields and
 * summary indented.
 */
export function formatFields(context: SessionContext): string {
  const indent = ' '.repeat(11);
  const block = (lines: string[]) =>
    lines.map((line, index) => (index === 0 ? line : `${indent}${line}`)).join('\n');
  const list = (items: string[] | null) =>
    items === null
      ? 'null'
      : items.length === 0
        ? '(none)'
        : block(items.map((item, index) => `${index + 1}. ${item}`));
  const fields: Array<[string, string]> = [
    ['sessionId', context.sessionId],
    ['userId', context.userId ?? 'null'],
    ['version', String(context.version)],
    ['createdAt', context.createdAt.toISOString()],
    ['updatedAt', context.updatedAt.toISOString()],
    ['goal', context.goal ?? 'null'],
    ['plan', list(context.plan)],
    ['progress', list(context.progress)],
    // Custom fields, one `key: JSON value` line each; left out when the session has none.
    ...(context.fields
      ? ([
          [
            'fields',
            block(
              Object.entries(context.fields).map(
                ([key, value]) => `${key}: ${JSON.stringify(value)}`,
              ),
            ),
          ],
        ] as Array<[string, string]>)
      : []),
    ['summary', context.summary === '' ? '(empty)' : block(context.summary.split('\n'))],
  ];
  return fields.map(([label, value]) => `${label.padEnd(indent.length)}${value}`).join('\n');
}

/** JSON for `--json`: two-space indented, dates as ISO 8601 strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
