import { MessageSchema } from '@ctx/core';
import type { AgentInputItem } from '@openai/agents';
import { describe, expect, it } from 'vitest';
import { isAssistantMessage, toSessionMessages } from '../src/index.js';

describe('toSessionMessages', () => {
  it('keeps text, marks media, leaves system and reasoning out and cuts long tool results', () => {
    const items: AgentInputItem[] = [
      { type: 'message', role: 'system', content: 'You are helpful.' },
      {
        type: 'message',
        role: 'user',
        content: [
          { type: 'input_text', text: 'What is on this receipt?' },
          { type: 'input_image', image: 'data:image/png;base64,AAAA' },
        ],
      },
      { type: 'reasoning', content: [{ type: 'input_text', text: 'thinking…' }] },
      {
        type: 'function_call',
        callId: 'c1',
        name: 'lookup',
        arguments: '{"sku":42}',
        status: 'completed',
      },
      {
        type: 'function_call_result',
        callId: 'c1',
        name: 'lookup',
        status: 'completed',
        output: { type: 'text', text: 'x'.repeat(50) },
      },
      {
        type: 'message',
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: 'A coffee.' }],
      },
    ];
    expect(toSessionMessages(items, { maxToolResultChars: 10 })).toEqual([
      { role: 'user', content: 'What is on this receipt?\n[image]' },
      { role: 'assistant', content: 'Tool call: lookup({"sku":42})' },
      { role: 'tool', content: `Tool result (lookup): ${'x'.repeat(9)}…` },
      { role: 'assistant', content: 'A coffee.' },
    ]);
    expect(isAssistantMessage(items.at(-1))).toBe(true);
    expect(isAssistantMessage(items.at(-2))).toBe(false);
  });

  it('gives messages every store accepts: no split surrogate pair, no NUL, no lone surrogate', () => {
    const items: AgentInputItem[] = [
      { type: 'message', role: 'user', content: 'nul \u0000 and a lone \uD800 surrogate' },
      {
        type: 'function_call_result',
        callId: 'c1',
        name: 'lookup',
        status: 'completed',
        // The cut at maxToolResultChars would fall between the two halves of 😀.
        output: { type: 'text', text: `${'x'.repeat(8)}😀 tail` },
      },
    ];
    const messages = toSessionMessages(items, { maxToolResultChars: 10 });
    for (const message of messages) expect(MessageSchema.safeParse(message).success).toBe(true);
    expect(messages[0]?.content).toBe('nul \uFFFD and a lone \uFFFD surrogate');
  });
});
