import { MessageSchema } from '@ctx/core';
import { AIMessage, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { describe, expect, it } from 'vitest';
import { lastTurn, toSessionMessages } from '../src/index.js';

describe('toSessionMessages', () => {
  it('keeps text, marks media, leaves system messages out and cuts long tool results', () => {
    const messages = toSessionMessages(
      [
        new SystemMessage('You are helpful.'),
        new HumanMessage({
          content: [
            { type: 'text', text: 'What is on this receipt?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        }),
        new AIMessage({
          content: 'Let me look it up.',
          tool_calls: [{ name: 'lookup', args: { sku: 42 }, id: 'c1', type: 'tool_call' }],
        }),
        new ToolMessage({ content: 'x'.repeat(50), tool_call_id: 'c1', name: 'lookup' }),
        new ToolMessage({
          content: 'timeout',
          tool_call_id: 'c2',
          name: 'lookup',
          status: 'error',
        }),
      ],
      { maxToolResultChars: 10 },
    );
    expect(messages).toEqual([
      { role: 'user', content: 'What is on this receipt?\n[image]' },
      { role: 'assistant', content: 'Let me look it up.\nTool call: lookup({"sku":42})' },
      { role: 'tool', content: `Tool result (lookup): ${'x'.repeat(9)}…` },
      { role: 'tool', content: 'Tool error (lookup): timeout' },
    ]);
  });
});

describe('lastTurn', () => {
  it('is the last run of human messages and everything after it', () => {
    const history = [
      new HumanMessage('one'),
      new AIMessage('reply one'),
      new HumanMessage('two'),
      new HumanMessage('two, continued'),
      new AIMessage('reply two'),
    ];
    expect(lastTurn(history).map((message) => message.text)).toEqual([
      'two',
      'two, continued',
      'reply two',
    ]);
  });
});

describe('toSessionMessages: storable text', () => {
  it('gives messages every store accepts: no split surrogate pair, no NUL, no lone surrogate', () => {
    // The cut at maxToolResultChars would fall between the two halves of 😀.
    const messages = toSessionMessages(
      [
        new HumanMessage('nul \u0000 and a lone \uD800 surrogate'),
        new ToolMessage({ content: `${'x'.repeat(8)}😀 tail`, tool_call_id: 'c1', name: 'lookup' }),
      ],
      { maxToolResultChars: 10 },
    );
    for (const message of messages) expect(MessageSchema.safeParse(message).success).toBe(true);
    expect(messages[0]?.content).toBe('nul \uFFFD and a lone \uFFFD surrogate');
  });
});
