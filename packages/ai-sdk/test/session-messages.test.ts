import { LIMITS, MessageSchema } from '@ctx/core';
import { generateText, type ModelMessage, stepCountIs, tool } from 'ai';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { toSessionMessages } from '../src/index.js';
import { MockLanguageModel, textResult, toolCallResult } from './helpers/models.js';

describe('toSessionMessages', () => {
  it('renders text, images, files, tool calls and tool results as documented', () => {
    const messages: ModelMessage[] = [
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in these?' },
          { type: 'image', image: new URL('https://example.com/cat.png'), mediaType: 'image/png' },
          { type: 'image', image: new Uint8Array([1, 2, 3]) },
          {
            type: 'file',
            data: 'JVBERi0xLjQK',
            mediaType: 'application/pdf',
            filename: 'report.pdf',
          },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'reasoning', text: 'The user wants a description.' },
          { type: 'text', text: 'Let me look.' },
          {
            type: 'tool-call',
            toolCallId: 'c1',
            toolName: 'describe',
            input: { file: 'report.pdf' },
          },
        ],
      },
      {
        role: 'tool',
        content: [
          {
            type: 'tool-result',
            toolCallId: 'c1',
            toolName: 'describe',
            output: { type: 'json', value: { pages: 3 } },
          },
          {
            type: 'tool-result',
            toolCallId: 'c2',
            toolName: 'ocr',
            output: { type: 'error-text', value: 'unsupported format' },
          },
          {
            type: 'tool-result',
            toolCallId: 'c3',
            toolName: 'delete',
            output: { type: 'execution-denied', reason: 'not allowed' },
          },
          {
            type: 'tool-result',
            toolCallId: 'c4',
            toolName: 'render',
            output: {
              type: 'content',
              value: [
                { type: 'text', text: 'Rendered page 1' },
                { type: 'image-data', data: 'iVBORw0KGgo=', mediaType: 'image/png' },
              ],
            },
          },
        ],
      },
      { role: 'assistant', content: 'A three-page report and a cat.' },
    ];
    expect(toSessionMessages(messages)).toEqual([
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        content: [
          'What is in these?',
          '[image: image/png, https://example.com/cat.png]',
          '[image]',
          '[file: report.pdf, application/pdf]',
        ].join('\n'),
      },
      {
        role: 'assistant',
        content: 'Let me look.\n[tool call describe: {"file":"report.pdf"}]',
      },
      {
        role: 'tool',
        content: [
          '[tool result describe: {"pages":3}]',
          '[tool result ocr: error: unsupported format]',
          '[tool result delete: denied: not allowed]',
          '[tool result render: Rendered page 1\n[image: image/png]]',
        ].join('\n'),
      },
      { role: 'assistant', content: 'A three-page report and a cat.' },
    ]);
  });

  it('drops messages with nothing to say, and keeps tool approvals', () => {
    expect(
      toSessionMessages([
        { role: 'assistant', content: [{ type: 'reasoning', text: 'thinking…' }] },
        { role: 'user', content: '   ' },
        {
          role: 'tool',
          content: [
            {
              type: 'tool-approval-response',
              approvalId: 'a1',
              approved: false,
              reason: 'too risky',
            },
          ],
        },
      ]),
    ).toEqual([{ role: 'tool', content: '[tool approval denied: too risky]' }]);
  });

  it('cuts long tool inputs and outputs, and says how much was left out', () => {
    const [message] = toSessionMessages(
      [
        {
          role: 'tool',
          content: [
            {
              type: 'tool-result',
              toolCallId: 'c1',
              toolName: 'search',
              output: { type: 'text', value: 'x'.repeat(5_000) },
            },
          ],
        },
      ],
      { maxToolChars: 100 },
    );
    expect(message?.content).toMatch(/^\[tool result search: x+… \[\d+ more characters\]\]$/);
    expect(message?.content.length).toBeLessThan(130);
    const kept = message?.content.match(/x+/)?.[0].length ?? 0;
    const left = Number(message?.content.match(/\[(\d+) more/)?.[1]);
    expect(kept + left).toBe(5_000);
  });

  it('makes any text storable: no NUL, no lone surrogate, no message longer than ctx accepts', () => {
    const messages = toSessionMessages([
      { role: 'user', content: 'a\u0000b \uD800 c' },
      { role: 'user', content: 'y'.repeat(LIMITS.messageMaxLength + 10) },
    ]);
    expect(messages[0]?.content).toBe('a\uFFFDb \uFFFD c');
    expect(messages[1]?.content.length).toBeLessThanOrEqual(LIMITS.messageMaxLength);
    expect(messages[1]?.content).toMatch(/more characters\]$/);
    for (const message of messages) expect(MessageSchema.safeParse(message).success).toBe(true);
  });

  it('turns a real generateText response into ctx messages a store accepts', async () => {
    const model = new MockLanguageModel({
      doGenerate: [toolCallResult('add', { a: 2, b: 3 }), textResult('2 + 3 = 5')],
    });
    const result = await generateText({
      model,
      prompt: 'Add 2 and 3',
      tools: {
        add: tool({
          inputSchema: z.object({ a: z.number(), b: z.number() }),
          execute: async ({ a, b }) => a + b,
        }),
      },
      stopWhen: stepCountIs(3),
    });
    // Every step's messages: `responseMessages` in AI SDK 7 (its `response` is the last step's),
    // `response.messages` in AI SDK 6.
    const { responseMessages } = result as { responseMessages?: ModelMessage[] };
    expect(toSessionMessages(responseMessages ?? result.response.messages)).toEqual([
      { role: 'assistant', content: '[tool call add: {"a":2,"b":3}]' },
      { role: 'tool', content: '[tool result add: 5]' },
      { role: 'assistant', content: '2 + 3 = 5' },
    ]);
  });
});
