import { ValidationError } from './errors.js';
import { compileFields, type FieldsSchema } from './fields.js';
import type { SessionContextBase } from './schema.js';
import { neutralizeTags, SESSION_CONTEXT_TAG, toSingleLine } from './text.js';

/** Options of {@link renderSessionContext}. */
export interface RenderOptions {
  /**
   * Upper bound on the length of the rendered block, tags included. When the block is longer,
   * the summary is shortened first (keeping its beginning), then the remaining text is cut; a cut
   * is marked with `…`. The result is deterministic for a given snapshot and budget. At least 64.
   * @default undefined (no limit)
   */
  maxChars?: number;
  /**
   * The custom fields schema: which fields are rendered, in which order, with which labels (a
   * field's `.meta({ title })`, else its key). Stored fields it does not declare are not rendered.
   * `null`: no custom field is rendered (what a store without a fields schema renders). A store
   * passes its own. @default every stored field, keys in code-unit order, the key as label
   */
  fields?: FieldsSchema | null;
}

/** A snapshot with untyped or typed custom fields (any `SessionContext`). */
export type AnySessionContext = SessionContextBase & { fields?: object | null };

/** The smallest accepted `maxChars`. */
export const MIN_RENDER_CHARS = 64;

const OPEN = `<${SESSION_CONTEXT_TAG}>`;
const CLOSE = `</${SESSION_CONTEXT_TAG}>`;
const ELLIPSIS = '…';

interface Sections {
  summary: string;
  rest: string[];
}

/**
 * One field value on one line: text as is, numbers and booleans as JSON, arrays as their items
 * joined with `, `, anything else (nested JSON kept by an older schema) as JSON. Empty when there
 * is nothing to show (null, blank text, an empty array).
 */
export function formatFieldValue(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return toSingleLine(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every((item) => typeof item !== 'object' || item === null)) {
    return value.map(formatFieldValue).filter(Boolean).join(', ');
  }
  return toSingleLine(JSON.stringify(value));
}

function fieldLines(context: AnySessionContext, options: RenderOptions): string[] {
  const stored = context.fields as Record<string, unknown> | null | undefined;
  if (!stored || options.fields === null) return [];
  const labels = options.fields
    ? compileFields(options.fields).definitions.map(({ key, label }) => [key, label] as const)
    : Object.keys(stored)
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
        .map((key) => [key, key] as const);
  const lines: string[] = [];
  for (const [key, label] of labels) {
    const value = Object.hasOwn(stored, key) ? formatFieldValue(stored[key]) : '';
    if (value) lines.push(`  ${neutralizeTags(toSingleLine(label))}: ${neutralizeTags(value)}`);
  }
  return lines;
}

function buildSections(context: AnySessionContext, options: RenderOptions): Sections {
  const summary = neutralizeTags(context.summary.trim());
  const rest: string[] = [];
  const goal = context.goal === null ? '' : neutralizeTags(toSingleLine(context.goal));
  if (goal) rest.push(`Goal: ${goal}`);
  const plan = (context.plan ?? [])
    .map((step) => neutralizeTags(toSingleLine(step)))
    .filter(Boolean);
  if (plan.length > 0) {
    rest.push(['Plan:', ...plan.map((step, index) => `  ${index + 1}. ${step}`)].join('\n'));
  }
  const done = (context.progress ?? [])
    .map((step) => neutralizeTags(toSingleLine(step)))
    .filter(Boolean);
  if (done.length > 0) rest.push(['Completed:', ...done.map((step) => `  ✓ ${step}`)].join('\n'));
  const fields = fieldLines(context, options);
  if (fields.length > 0) rest.push(['Fields:', ...fields].join('\n'));
  return { summary, rest };
}

function assemble(summary: string, rest: string[]): string {
  const parts = summary ? [`Summary: ${summary}`, ...rest] : rest;
  return parts.join('\n\n');
}

// Cuts at a code-point boundary so that a surrogate pair is never split.
function cut(text: string, length: number): string {
  if (length <= 0) return '';
  let end = Math.min(length, text.length);
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return text.slice(0, end).trimEnd();
}

/**
 * Renders a snapshot as the block injected into a system prompt:
 *
 * ```
 * <session_context>
 * Summary: …
 *
 * Goal: …
 *
 * Plan:
 *   1. …
 *
 * Completed:
 *   ✓ …
 *
 * Fields:
 *   Target platform: fly
 * </session_context>
 * ```
 *
 * Sections without content are left out; an empty snapshot (or `null`) renders as `""`. Custom
 * fields come last, one `  <label>: <value>` line each (see {@link formatFieldValue}), fields
 * without a value left out. Text from users and models, labels included, is neutralised so it
 * cannot open or close the block's tags.
 */
export function renderSessionContext(
  context: AnySessionContext | null,
  options: RenderOptions = {},
): string {
  if (!context) return '';
  const { summary, rest } = buildSections(context, options);
  let body = assemble(summary, rest);
  if (!body) return '';
  const { maxChars } = options;
  if (maxChars !== undefined) {
    if (!Number.isInteger(maxChars) || maxChars < MIN_RENDER_CHARS) {
      throw new ValidationError(
        'INVALID_INPUT',
        `Invalid render options: maxChars must be an integer of at least ${MIN_RENDER_CHARS}`,
        { issues: [{ path: 'maxChars', message: `must be an integer ≥ ${MIN_RENDER_CHARS}` }] },
      );
    }
    const room = maxChars - OPEN.length - CLOSE.length - 2;
    if (body.length > room) {
      const withoutSummary = assemble('', rest);
      const summaryRoom =
        room - withoutSummary.length - 'Summary: '.length - (rest.length > 0 ? 2 : 0) - 1;
      if (summary && summaryRoom >= 16) {
        body = assemble(cut(summary, summaryRoom) + ELLIPSIS, rest);
      } else {
        body = cut(withoutSummary || body, room - 1) + ELLIPSIS;
      }
      // A cut can end text in the middle of what becomes a tag once `…` follows it.
      body = neutralizeTags(body);
    }
  }
  return `${OPEN}\n${body}\n${CLOSE}`;
}

/**
 * Returns `basePrompt` with the rendered block appended after a blank line (or `basePrompt`
 * unchanged when the snapshot renders as nothing).
 */
export function injectSessionContext(
  basePrompt: string,
  context: AnySessionContext | null,
  options?: RenderOptions,
): string {
  const block = renderSessionContext(context, options);
  if (!block) return basePrompt;
  return basePrompt ? `${basePrompt.trimEnd()}\n\n${block}` : block;
}

/**
 * A human-readable, multi-line description of one snapshot for logs, terminals and debugging:
 * identity, version, timestamps, then every field (plan steps checked when completed).
 */
export function formatSessionContext(
  context: AnySessionContext | null,
  options: Pick<RenderOptions, 'fields'> = {},
): string {
  if (!context) return '(no session context)';
  const lines = [
    `Session ${context.sessionId}${context.userId === null ? '' : ` (user ${context.userId})`}`,
    `  version ${context.version} · created ${context.createdAt.toISOString()} · updated ${context.updatedAt.toISOString()}`,
    '',
    'Summary:',
    ...(context.summary ? context.summary.split('\n').map((line) => `  ${line}`) : ['  (empty)']),
  ];
  if (context.goal !== null) lines.push('', `Goal: ${context.goal}`);
  if (context.plan !== null) {
    const done = new Set(context.progress ?? []);
    lines.push('', 'Plan:');
    context.plan.forEach((step, index) => {
      lines.push(`  [${done.has(step) ? 'x' : ' '}] ${index + 1}. ${step}`);
    });
    if (context.plan.length === 0) lines.push('  (no steps)');
  }
  if (context.progress !== null) {
    lines.push('', `Completed: ${context.progress.length} of ${context.plan?.length ?? 0} steps`);
  }
  const fields = fieldLines(context, options);
  if (fields.length > 0) lines.push('', 'Fields:', ...fields);
  return lines.join('\n');
}
