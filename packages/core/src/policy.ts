import type { ContextDraft, Message, SessionContext } from './schema.js';

/** The content fields of a snapshot, as decided by the update policy. */
export interface SnapshotContent {
  summary: string;
  goal: string | null;
  plan: string[] | null;
  progress: string[] | null;
}

/** Update modes. `always`: extract after every turn that has new user or assistant content. */
export const UPDATE_MODES = ['always'] as const;
export type UpdateMode = (typeof UPDATE_MODES)[number];

/**
 * Whether a turn is worth an extraction: it must hold at least one user or assistant message with
 * non-blank content. Tool-only or system-only turns are skipped without a model call.
 */
export function hasConversationalContent(messages: readonly Message[]): boolean {
  return messages.some(
    (message) =>
      (message.role === 'user' || message.role === 'assistant') && message.content.trim() !== '',
  );
}

/**
 * The messages an extractor is given: everything but `system` messages (those hold the agent's own
 * instructions, including the rendered session context itself).
 */
export function messagesForExtraction(messages: readonly Message[]): Message[] {
  return messages.filter((message) => message.role !== 'system');
}

/** How plan steps are compared: case and spacing do not matter. */
export const stepKey = (step: string) => step.replace(/\s+/g, ' ').trim().toLowerCase();

function cleanSteps(steps: readonly string[] | null | undefined): string[] {
  const seen = new Set<string>();
  const result: string[] = [];
  for (const raw of steps ?? []) {
    const step = raw.trim();
    const key = stepKey(step);
    if (!key || seen.has(key)) continue;
    seen.add(key);
    result.push(step);
  }
  return result;
}

/**
 * Applies the update policy's invariants to an extractor's draft:
 *
 * - Summary mode never writes goal, plan or progress: whatever the session had is kept as it was.
 * - Planning mode: a missing or blank goal keeps the previous goal; a missing or empty plan keeps the
 *   previous plan; plan steps are trimmed and de-duplicated. `progress` always names steps of the
 *   stored plan, in plan order: the draft's completed steps that match a step (ignoring case and
 *   spacing), plus every previously completed step that is still in the plan — a completed step
 *   stays completed unless the plan drops it.
 */
export function applyUpdatePolicy(
  previous: SessionContext | null,
  draft: ContextDraft,
  options: { planning: boolean },
): SnapshotContent {
  const summary = draft.summary.trim();
  if (!options.planning) {
    return {
      summary,
      goal: previous?.goal ?? null,
      plan: previous?.plan ?? null,
      progress: previous?.progress ?? null,
    };
  }
  const goal = draft.goal?.trim() || previous?.goal || null;
  const draftPlan = cleanSteps(draft.plan);
  const plan = draftPlan.length > 0 ? draftPlan : previous?.plan ? [...previous.plan] : null;
  if (!plan) return { summary, goal, plan: null, progress: null };
  const done = new Set([
    ...cleanSteps(previous?.progress).map(stepKey),
    ...cleanSteps(draft.progress).map(stepKey),
  ]);
  return { summary, goal, plan, progress: plan.filter((step) => done.has(stepKey(step))) };
}
