import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ContextError,
  type ContextRepository,
  createMemoryRepository,
  SessionContextStore,
} from '@ctx/core';
import { createScriptedExtractor, type ScriptedExtractor } from '@ctx/core/testing';
import { createSqliteRepository } from '@ctx/store-sqlite';
import {
  Agent,
  MemorySession,
  run,
  setDefaultOpenAIClient,
  setTracingDisabled,
  tool,
} from '@openai/agents';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createContextInstructions,
  createContextSession,
  type SessionContextRunContext,
} from '../src/index.js';
import { type ResponsesServer, startResponsesServer } from './responses-server.js';

const INSTRUCTIONS = 'You plan trips.';

let server: ResponsesServer;
beforeAll(async () => {
  server = await startResponsesServer();
  setTracingDisabled(true);
  setDefaultOpenAIClient(new OpenAI({ apiKey: 'sk-test', baseURL: server.baseURL, maxRetries: 0 }));
});
afterAll(async () => {
  await server.close();
});

let directory: string;
let repository: ContextRepository;
let extractor: ScriptedExtractor;
let store: SessionContextStore;
beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'ctx-agents-'));
  // A SQLite file; on Node 24 (`test:newest`) the memory repository, since the workspace's
  // better-sqlite3 is compiled for the system Node.
  repository =
    process.env.CTX_SDK === 'newest'
      ? createMemoryRepository()
      : createSqliteRepository({ filename: join(directory, 'ctx.db') });
  // The summary names every user message the extractor was given.
  extractor = createScriptedExtractor({
    fallback: (request) => ({
      summary: [
        request.previous?.summary,
        `User asked: ${request.messages
          .filter((message) => message.role === 'user')
          .map((message) => message.content)
          .join(' / ')}.`,
      ]
        .filter(Boolean)
        .join(' '),
    }),
  });
  store = new SessionContextStore({ repository, extractor });
  server.requests.length = 0;
});
afterEach(async () => {
  await store.close();
  await repository.close();
  rmSync(directory, { recursive: true, force: true });
  expect(server.pending()).toBe(0);
});

const randomId = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2)}`;

const hotelPrices = tool({
  name: 'hotel_prices',
  description: 'Typical hotel price of a city',
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => `${city}: 90 euros a night`,
});

function plannerAgent() {
  return new Agent<SessionContextRunContext>({
    name: 'Planner',
    model: 'gpt-4.1-mini',
    tools: [hotelPrices],
    instructions: createContextInstructions({ store, instructions: INSTRUCTIONS }),
  });
}

describe('createContextInstructions + createContextSession', () => {
  it("puts turn 1's context into turn 2's instructions and stores version 2", async () => {
    const sessionId = randomId('trip');
    const ids = { sessionId, userId: 'alice' };
    const agent = plannerAgent();
    const session = createContextSession({ store, ...ids });

    server.enqueue({ text: 'Lisbon in May is lovely. How many days?' });
    const turn1 = await run(agent, 'I want a week in Lisbon in May.', { session, context: ids });
    expect(turn1.finalOutput).toBe('Lisbon in May is lovely. How many days?');
    await store.flush();
    expect(server.requests[0]?.instructions).toBe(INSTRUCTIONS);
    expect((await store.get(sessionId))?.version).toBe(1);

    server.enqueue({ text: 'Then plan Sintra on day 3.' });
    const turn2 = await run(agent, 'Seven days. Day trips?', {
      session,
      context: ids,
      stream: true,
    });
    for await (const _event of turn2) {
      // consume the stream to its end
    }
    await turn2.completed;
    expect(turn2.finalOutput).toBe('Then plan Sintra on day 3.');
    await store.flush();

    const instructions = server.requests[1]?.instructions ?? '';
    expect(server.requests[1]?.stream).toBe(true);
    expect(instructions).toBe(
      `${INSTRUCTIONS}\n\n<session_context>\nSummary: User asked: I want a week in Lisbon in May..\n</session_context>`,
    );
    const stored = await store.get(sessionId, { userId: 'alice' });
    expect(stored).toMatchObject({ version: 2, userId: 'alice' });
    expect(stored?.summary).toContain('Seven days. Day trips?');
    // Each extraction got only its own turn; the history stays in the Agents SDK session.
    expect(extractor.requests.map((request) => request.messages)).toEqual([
      [
        { role: 'user', content: 'I want a week in Lisbon in May.' },
        { role: 'assistant', content: 'Lisbon in May is lovely. How many days?' },
      ],
      [
        { role: 'user', content: 'Seven days. Day trips?' },
        { role: 'assistant', content: 'Then plan Sintra on day 3.' },
      ],
    ]);
    expect(await session.getItems()).toHaveLength(4);
  });

  it('records a tool-calling turn once and renders the block for every model call', async () => {
    const sessionId = randomId('tools');
    await store.update({
      sessionId,
      messages: [{ role: 'user', content: 'My budget is 1500 euros.' }],
    });
    const agent = plannerAgent();
    const session = createContextSession({ store, session: new MemorySession({ sessionId }) });

    server.enqueue(
      { toolCalls: [{ name: 'hotel_prices', arguments: { city: 'Lisbon' } }] },
      { text: 'Seven nights fit your budget.' },
    );
    const result = await run(agent, 'Can I afford a week in Lisbon?', {
      session,
      context: { sessionId },
    });
    await store.flush();

    expect(result.finalOutput).toBe('Seven nights fit your budget.');
    expect(server.requests).toHaveLength(2);
    for (const request of server.requests) {
      expect(request.instructions).toContain('My budget is 1500 euros.');
    }
    expect(extractor.requests).toHaveLength(2); // the seeding update, then this one turn
    expect(extractor.requests[1]?.messages).toEqual([
      { role: 'user', content: 'Can I afford a week in Lisbon?' },
      { role: 'assistant', content: 'Tool call: hotel_prices({"city":"Lisbon"})' },
      { role: 'tool', content: 'Tool result (hotel_prices): Lisbon: 90 euros a night' },
      { role: 'assistant', content: 'Seven nights fit your budget.' },
    ]);
    expect((await store.get(sessionId))?.version).toBe(2);
  });

  it('records a turn interrupted for a tool approval once, when it finishes', async () => {
    const sessionId = randomId('approval');
    const ids = { sessionId };
    const session = createContextSession({ store, ...ids });
    const book = tool({
      name: 'book_hotel',
      description: 'Books a hotel',
      parameters: z.object({ city: z.string() }),
      needsApproval: true,
      execute: async ({ city }) => `Booked in ${city}`,
    });
    const agent = new Agent<SessionContextRunContext>({
      name: 'Booker',
      model: 'gpt-4.1-mini',
      tools: [book],
      instructions: createContextInstructions({ store, instructions: INSTRUCTIONS }),
    });

    server.enqueue({ toolCalls: [{ name: 'book_hotel', arguments: { city: 'Porto' } }] });
    const paused = await run(agent, 'Book Porto.', { session, context: ids });
    expect(paused.interruptions).toHaveLength(1);
    await store.flush();
    expect(extractor.requests).toHaveLength(0);

    for (const interruption of paused.interruptions) paused.state.approve(interruption);
    server.enqueue({ text: 'Booked your hotel in Porto.' });
    const done = await run(agent, paused.state, { session, context: ids });
    expect(done.finalOutput).toBe('Booked your hotel in Porto.');
    await store.flush();

    expect(extractor.requests.map((request) => request.messages)).toEqual([
      [
        { role: 'user', content: 'Book Porto.' },
        { role: 'assistant', content: 'Tool call: book_hotel({"city":"Porto"})' },
        { role: 'tool', content: 'Tool result (book_hotel): Booked in Porto' },
        { role: 'assistant', content: 'Booked your hotel in Porto.' },
      ],
    ]);
    expect((await store.get(sessionId))?.version).toBe(1);
  });

  it('leaves the instructions alone when the run context names no session', async () => {
    await store.update({
      sessionId: randomId('other'),
      messages: [{ role: 'user', content: 'Someone else entirely.' }],
    });
    server.enqueue({ text: 'Hello.' });
    await run(plannerAgent(), 'Hi');
    expect(server.requests[0]?.instructions).toBe(INSTRUCTIONS);
  });

  it("refuses another user's session before the model is called", async () => {
    const sessionId = randomId('private');
    await store.update({
      sessionId,
      userId: 'alice',
      messages: [{ role: 'user', content: 'My passport is in the hotel safe.' }],
    });
    const error = await run(plannerAgent(), 'What did Alice say?', {
      context: { sessionId, userId: 'mallory' },
    }).catch((caught: unknown) => caught);

    expect(ContextError.isInstance(error)).toBe(true);
    expect((error as ContextError).code).toBe('OWNERSHIP_MISMATCH');
    expect(server.requests).toHaveLength(0);
  });

  it('records nothing when the model call fails', async () => {
    const sessionId = randomId('outage');
    const ids = { sessionId };
    const session = createContextSession({ store, ...ids });
    const agent = plannerAgent();

    server.enqueue({ status: 500, message: 'The server had an error.' });
    await expect(run(agent, 'First try.', { session, context: ids })).rejects.toThrow();
    await store.flush();
    expect(extractor.requests).toHaveLength(0);
    expect(await store.get(sessionId)).toBeNull();

    server.enqueue({ text: 'Got it.' });
    await run(agent, 'Second try.', { session, context: ids });
    await store.flush();
    // The SDK kept no history of the failed run either: the turn log follows the history.
    expect(extractor.requests.map((request) => request.messages)).toEqual([
      [
        { role: 'user', content: 'Second try.' },
        { role: 'assistant', content: 'Got it.' },
      ],
    ]);
    expect((await store.get(sessionId))?.version).toBe(1);
  });

  it('records a failed streamed input with the next reply, as the history keeps it', async () => {
    const sessionId = randomId('stream-outage');
    const ids = { sessionId };
    const session = createContextSession({ store, ...ids });
    const agent = plannerAgent();

    server.enqueue({ status: 500, message: 'The server had an error.' });
    const failing = await run(agent, 'First try.', { session, context: ids, stream: true });
    const failure = await (async () => {
      for await (const _event of failing) {
        // consume
      }
      await failing.completed;
    })().catch((caught: unknown) => caught);
    expect(failure).toBeInstanceOf(Error);
    // A streamed run saves its input before the model answers; it is recorded with the reply.
    expect(await session.getItems()).toEqual([
      { type: 'message', role: 'user', content: 'First try.' },
    ]);
    await store.flush();
    expect(extractor.requests).toHaveLength(0);

    server.enqueue({ text: 'Got it.' });
    await run(agent, 'Second try.', { session, context: ids });
    await store.flush();
    expect(extractor.requests.map((request) => request.messages)).toEqual([
      [
        { role: 'user', content: 'First try.' },
        { role: 'user', content: 'Second try.' },
        { role: 'assistant', content: 'Got it.' },
      ],
    ]);
    expect((await store.get(sessionId))?.version).toBe(1);
  });

  it('refuses invalid options when they are built', () => {
    const codeOf = (build: () => unknown) => {
      try {
        build();
      } catch (error) {
        return ContextError.isInstance(error) ? error.code : 'not a ContextError';
      }
      return 'no error';
    };
    expect(codeOf(() => createContextSession({ store }))).toBe('INVALID_CONFIG');
    expect(
      codeOf(() => createContextSession({ store, sessionId: 's', maxToolResultChars: 0 })),
    ).toBe('INVALID_CONFIG');
    expect(codeOf(() => createContextInstructions({ store, maxChars: 10 }))).toBe('INVALID_CONFIG');
    expect(
      codeOf(() => createContextInstructions({ store: {} as unknown as SessionContextStore })),
    ).toBe('INVALID_CONFIG');
  });
});
