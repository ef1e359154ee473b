import { ChatOpenAI } from '@langchain/openai';
import { createAgent, tool } from 'langchain';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type ResponsesServer,
  startResponsesServer,
} from '../../openai-agents/test/responses-server.js';
import { createLangChainMiddleware } from '../src/index.js';
import { openTestStore, randomId } from './helpers.js';

let server: ResponsesServer;
beforeAll(async () => {
  server = await startResponsesServer();
});
afterAll(async () => {
  await server.close();
});

it('sends the block to a real OpenAI client and records the tool-calling turn once', async () => {
  const context = openTestStore();
  try {
    const { store, extractor } = context;
    const sessionId = randomId('wire');
    await store.update({
      sessionId,
      userId: 'alice',
      messages: [{ role: 'user', content: 'My budget is 1500 euros.' }],
    });
    const model = new ChatOpenAI({
      model: 'gpt-4.1-mini',
      apiKey: 'sk-test',
      useResponsesApi: true,
      configuration: { baseURL: server.baseURL },
      maxRetries: 0,
    });
    const prices = tool(async ({ city }: { city: string }) => `${city}: 90 euros a night`, {
      name: 'hotel_prices',
      description: 'Typical hotel price in a city',
      schema: z.object({ city: z.string() }),
    });
    const agent = createAgent({
      model,
      tools: [prices],
      systemPrompt: 'You plan trips.',
      middleware: [createLangChainMiddleware({ store })],
    });
    server.enqueue(
      { toolCalls: [{ name: 'hotel_prices', arguments: { city: 'Lisbon' } }] },
      { text: 'Seven nights in Lisbon fit your budget.' },
    );

    const result = await agent.invoke(
      { messages: [{ role: 'user', content: 'Can I afford a week in Lisbon?' }] },
      { context: { sessionId, userId: 'alice' } },
    );
    await store.flush();

    expect(result.messages.at(-1)?.text).toBe('Seven nights in Lisbon fit your budget.');
    expect(server.requests).toHaveLength(2);
    for (const request of server.requests) {
      // ChatOpenAI sends the system message as a `system`/`developer` input item.
      const system = request.input.find(
        (item) => item.role === 'system' || item.role === 'developer',
      );
      const text = JSON.stringify(system?.content ?? '');
      expect(text).toContain('You plan trips.');
      expect(text).toContain('<session_context>');
      expect(text).toContain('My budget is 1500 euros.');
    }
    expect(extractor.requests).toHaveLength(2);
    expect(extractor.requests[1]?.messages).toEqual([
      { role: 'user', content: 'Can I afford a week in Lisbon?' },
      { role: 'assistant', content: 'Tool call: hotel_prices({"city":"Lisbon"})' },
      { role: 'tool', content: 'Tool result (hotel_prices): Lisbon: 90 euros a night' },
      { role: 'assistant', content: 'Seven nights in Lisbon fit your budget.' },
    ]);
    expect(await store.get(sessionId, { userId: 'alice' })).toMatchObject({ version: 2 });
  } finally {
    await context.close();
  }
});
