import { ValidationError } from './errors.js';
import type { SessionContext } from './schema.js';
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
}

/** The smallest accepted `maxChars`. */
export const MIN_RENDER_CHARS = 64;

const OPEN = `<${SESSION_CONTEXT_TAG}>`;
const CLOSE = `</${SESSION_CONTEXT_TAG}>`;
const ELLIPSIS = '…';

interface Sections {
  summary: string;
  rest: string[];
}

function buildSections(context: SessionContext): Sections {
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
 * </session_context>
 * ```
 *
 * Sections without content are left out; an empty snapshot (or `null`) renders as `""`. Text from
 * users and models is neutralised so it cannot open or close the block's tags.
 */
export function renderSessionContext(
  context: SessionContext | null,
  options: RenderOptions = {},
): string {
  if (!context) return '';
  const { summary, rest } = buildSections(context);
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
  context: SessionContext | null,
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
export function formatSessionContext(context: SessionContext | null): string {
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
  return lines.join('\n');
}
