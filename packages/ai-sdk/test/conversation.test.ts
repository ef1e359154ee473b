import { createMemoryRepository } from '@ctx/core';
import { describe, expect, it } from 'vitest';
import { runTwoTurnConversation, SYSTEM } from './helpers/conversation.js';

describe('a two-turn streamText conversation on the memory repository', () => {
  it('puts turn 1’s context in turn 2’s system prompt and stores version 2', async () => {
    const sessionId = `trip-${crypto.randomUUID()}`;
    const { systemPrompts, blockAfterTurn1, snapshot } = await runTwoTurnConversation(
      createMemoryRepository(),
      sessionId,
    );
    expect(systemPrompts[0]).toBe(SYSTEM);
    expect(blockAfterTurn1).toMatch(/^<session_context>\nSummary: .*Lisbon/s);
    expect(systemPrompts[1]).toBe(`${SYSTEM}\n\n${blockAfterTurn1}`);
    expect(snapshot).toMatchObject({ sessionId, version: 2 });
  });
});
