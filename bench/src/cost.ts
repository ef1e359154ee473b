import type { Message, SessionContext } from '@ctx/core';
import { applyUpdatePolicy, buildExtractionPrompt, neutralizeTags } from '@ctx/core/adapter';
import { createExtractiveExtractor } from '@ctx/model-extractive';
import { contentLength, createConversation } from './fixtures.js';

/** Characters and estimated tokens of one extraction request (system + user prompt). */
export interface PromptSize {
  chars: number;
  /** `ceil(chars / 4)`: a rough estimate, not a tokenizer count. */
  estimatedTokens: number;
}

/** Section 3 at one turn. */
export interface CostPoint {
  turn: number;
  /** Characters of the conversation's messages through this turn. */
  transcriptChars: number;
  /** Summary length of the previous snapshot the ctx request carries. */
  previousSummaryChars: number;
  /** Characters of the fixed system prompt (instructions), included in both requests. */
  systemChars: number;
  /** ctx: previous snapshot + this turn's messages. */
  ctx: PromptSize;
  /** Naive: the same prompt with no previous snapshot and every message so far. */
  naive: PromptSize;
  /** `naive.chars / ctx.chars`. */
  naiveOverCtx: number;
  /** Estimated tokens sent over turns 1…N, every turn extracted. */
  cumulative: { ctxTokens: number; naiveTokens: number };
}

/** Section 3: what the extractor is sent as the conversation grows. */
export interface CostResult {
  turns: number;
  seed: number;
  /** How the previous snapshot was produced. */
  previousSnapshot: string;
  points: CostPoint[];
  /** `ctx.chars` at the last checkpoint divided by `ctx.chars` at the first. */
  ctxGrowth: number;
  /** The same for the naive request. */
  naiveGrowth: number;
}

const size = (chars: number): PromptSize => ({ chars, estimatedTokens: Math.ceil(chars / 4) });

const promptChars = (prompt: { system: string; user: string }) =>
  prompt.system.length + prompt.user.length;

// Length of one message as buildExtractionPrompt frames it inside <transcript>.
const framedLength = (message: Message, index: number) =>
  `<message index="${index}" role="${message.role}">\n`.length +
  neutralizeTags(message.content).length +
  '\n</message>'.length;

/**
 * Runs `@ctx/model-extractive`'s extractive extractor through a seeded synthetic conversation
 * (planning mode) and sizes, at each checkpoint, the request a model extractor would get — core's
 * `buildExtractionPrompt` of the previous snapshot plus that turn's messages — against the naive
 * request that carries the whole transcript instead. The naive size of every turn is computed
 * incrementally and checked against a real `buildExtractionPrompt` at the checkpoints.
 */
export async function benchCost(checkpoints: readonly number[], seed = 42): Promise<CostResult> {
  const turns = Math.max(...checkpoints);
  const conversation = createConversation(turns, seed);
  const extractor = createExtractiveExtractor();
  const emptyNaive = promptChars(
    buildExtractionPrompt({ previous: null, messages: [], planning: true }),
  );
  let previous = null as SessionContext | null;
  let naiveTranscript = 0;
  let messageCount = 0;
  let transcriptChars = 0;
  let ctxTotal = 0;
  let naiveTotal = 0;
  const points: CostPoint[] = [];
  for (let turn = 1; turn <= turns; turn += 1) {
    const messages = conversation[turn - 1] as Message[];
    for (const message of messages) {
      messageCount += 1;
      naiveTranscript += framedLength(message, messageCount) + (messageCount > 1 ? 1 : 0);
    }
    transcriptChars += contentLength(messages);
    const request = { previous, messages, planning: true };
    const ctxPrompt = buildExtractionPrompt(request);
    const ctxChars = promptChars(ctxPrompt);
    const naiveChars = emptyNaive + naiveTranscript;
    ctxTotal += Math.ceil(ctxChars / 4);
    naiveTotal += Math.ceil(naiveChars / 4);
    if (checkpoints.includes(turn)) {
      const naivePrompt = buildExtractionPrompt({
        previous: null,
        messages: conversation.slice(0, turn).flat(),
        planning: true,
      });
      if (promptChars(naivePrompt) !== naiveChars) {
        throw new Error(
          `naive size mismatch at turn ${turn}: ${promptChars(naivePrompt)} vs ${naiveChars}`,
        );
      }
      points.push({
        turn,
        transcriptChars,
        previousSummaryChars: previous?.summary.length ?? 0,
        systemChars: ctxPrompt.system.length,
        ctx: size(ctxChars),
        naive: size(naiveChars),
        naiveOverCtx: Math.round((naiveChars / ctxChars) * 10) / 10,
        cumulative: { ctxTokens: ctxTotal, naiveTokens: naiveTotal },
      });
    }
    const { draft } = await extractor.extract(request);
    const last: SessionContext | null = previous;
    const content = applyUpdatePolicy(last, draft, { planning: true });
    const now = new Date(Date.UTC(2025, 0, 1) + turn * 60_000);
    previous = {
      sessionId: 'cost',
      userId: null,
      ...content,
      createdAt: last?.createdAt ?? now,
      updatedAt: now,
      version: (last?.version ?? 0) + 1,
    };
  }
  const first = points[0] as CostPoint;
  const last = points[points.length - 1] as CostPoint;
  return {
    turns,
    seed,
    previousSnapshot:
      "@ctx/model-extractive's createExtractiveExtractor (defaults: at most 6 sentences / 1200 characters of summary) run through every turn, planning mode",
    points,
    ctxGrowth: Math.round((last.ctx.chars / first.ctx.chars) * 100) / 100,
    naiveGrowth: Math.round((last.naive.chars / first.naive.chars) * 100) / 100,
  };
}
