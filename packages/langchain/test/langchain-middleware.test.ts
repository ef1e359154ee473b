import { ContextError, type SessionContextStore } from '@ctx/core';
import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { Command, MemorySaver } from '@langchain/langgraph';
import { createAgent, humanInTheLoopMiddleware, tool } from 'langchain';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createLangChainMiddleware } from '../src/index.js';
import { openTestStore, randomId, systemText, type TestStore } from './helpers.js';

const BASE_PROMPT = 'You are a travel assistant.';

const weather = tool(async ({ city }: { city: string }) => `Sunny and 24°C in ${city}`, {
  name: 'weather',
  description: 'Current weather of a city',
  schema: z.object({ city: z.string() }),
});

let context: TestStore;
beforeEach(() => {
  context = openTestStore();
});
afterEach(async () => {
  await context.close();
});

function agentWith(
  model: ReturnType<typeof fakeModel>,
  options: { checkpointer?: MemorySaver } = {},
) {
  return createAgent({
    model,
    tools: [weather],
    systemPrompt: BASE_PROMPT,
    middleware: [createLangChainMiddleware({ store: context.store })],
    ...options,
  });
}

describe('createLangChainMiddleware', () => {
  it("puts turn 1's context into turn 2's system prompt and stores version 2", async () => {
    const { store, extractor } = context;
    const sessionId = randomId('trip');
    const model = fakeModel()
      .respond(new AIMessage('Lisbon in May is lovely. How many days?'))
      .respond(new AIMessage('Then plan Sintra on day 3.'));
    const agent = agentWith(model);
    const ids = { context: { sessionId, userId: 'alice' } };

    const first = new HumanMessage('I want a week in Lisbon in May.');
    const turn1 = await agent.invoke({ messages: [first] }, ids);
    await store.flush();
    expect(systemText(model.calls[0]!.messages)).toBe(BASE_PROMPT);
    expect((await store.get(sessionId))?.version).toBe(1);

    await agent.invoke(
      { messages: [...turn1.messages, new HumanMessage('Seven days. Day trips?')] },
      ids,
    );
    await store.flush();

    const system = systemText(model.calls[1]!.messages);
    expect(system.startsWith(`${BASE_PROMPT}\n\n<session_context>`)).toBe(true);
    expect(system).toContain('User asked: I want a week in Lisbon in May..');
    expect(system.trimEnd().endsWith('</session_context>')).toBe(true);

    const stored = await store.get(sessionId, { userId: 'alice' });
    expect(stored).toMatchObject({ version: 2, userId: 'alice' });
    expect(stored?.summary).toContain('Seven days. Day trips?');
    // Each extraction got only its own turn: the snapshot stands in for everything older.
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
  });

  it('records a tool-calling turn once, with the calls and results, and injects into every model call', async () => {
    const { store, extractor } = context;
    const sessionId = randomId('tools');
    await store.update({
      sessionId,
      messages: [{ role: 'user', content: 'We are planning a trip to Portugal.' }],
    });
    const model = fakeModel()
      .respond(
        new AIMessage({
          content: '',
          tool_calls: [
            { name: 'weather', args: { city: 'Porto' }, id: 'call-1', type: 'tool_call' },
          ],
        }),
      )
      .respond(new AIMessage('It is sunny in Porto: pack light.'));
    const agent = agentWith(model);

    const result = await agent.invoke(
      { messages: [new HumanMessage('What should I pack for Porto?')] },
      { context: { sessionId } },
    );
    expect(result.messages.at(-1)?.text).toBe('It is sunny in Porto: pack light.');

    await store.flush();

    expect(model.callCount).toBe(2);
    for (const call of model.calls) {
      expect(systemText(call.messages)).toContain('We are planning a trip to Portugal.');
    }
    expect(extractor.requests).toHaveLength(2); // the seeding update, then this one turn
    expect(extractor.requests[1]?.messages).toEqual([
      { role: 'user', content: 'What should I pack for Porto?' },
      { role: 'assistant', content: 'Tool call: weather({"city":"Porto"})' },
      { role: 'tool', content: 'Tool result (weather): Sunny and 24°C in Porto' },
      { role: 'assistant', content: 'It is sunny in Porto: pack light.' },
    ]);
    expect((await store.get(sessionId))?.version).toBe(2);
  });

  it('takes the session from configurable.thread_id and records only the new turn of a checkpointed thread', async () => {
    const { store, extractor } = context;
    const threadId = randomId('thread');
    const model = fakeModel()
      .respond(new AIMessage('Noted: vegetarian.'))
      .respond(new AIMessage('Try the market hall.'));
    const agent = agentWith(model, { checkpointer: new MemorySaver() });
    const config = { configurable: { thread_id: threadId } };

    await agent.invoke({ messages: [new HumanMessage('I am vegetarian.')] }, config);
    await store.flush();
    await agent.invoke({ messages: [new HumanMessage('Where to eat?')] }, config);
    await store.flush();

    expect(systemText(model.calls[1]!.messages)).toContain('I am vegetarian.');
    expect(await store.get(threadId)).toMatchObject({ version: 2, userId: null });
    expect(extractor.requests[1]?.messages).toEqual([
      { role: 'user', content: 'Where to eat?' },
      { role: 'assistant', content: 'Try the market hall.' },
    ]);
  });

  it('records a turn paused for a human approval once, when the resumed run ends', async () => {
    const { store, extractor } = context;
    const threadId = randomId('approval');
    const model = fakeModel()
      .respond(
        new AIMessage({
          content: '',
          tool_calls: [
            { name: 'weather', args: { city: 'Faro' }, id: 'call-9', type: 'tool_call' },
          ],
        }),
      )
      .respond(new AIMessage('Faro is sunny.'));
    const agent = createAgent({
      model,
      tools: [weather],
      checkpointer: new MemorySaver(),
      middleware: [
        humanInTheLoopMiddleware({ interruptOn: { weather: true } }),
        createLangChainMiddleware({ store }),
      ],
    });
    const config = { configurable: { thread_id: threadId } };

    const paused = await agent.invoke({ messages: [new HumanMessage('Weather in Faro?')] }, config);
    await store.flush();
    expect(paused.messages.at(-1)?.type).toBe('ai'); // waiting: the tool has not run
    expect(model.callCount).toBe(1);
    expect(extractor.requests).toHaveLength(0);

    await agent.invoke(new Command({ resume: { decisions: [{ type: 'approve' }] } }), config);
    await store.flush();

    expect(extractor.requests.map((request) => request.messages)).toEqual([
      [
        { role: 'user', content: 'Weather in Faro?' },
        { role: 'assistant', content: 'Tool call: weather({"city":"Faro"})' },
        { role: 'tool', content: 'Tool result (weather): Sunny and 24°C in Faro' },
        { role: 'assistant', content: 'Faro is sunny.' },
      ],
    ]);
    expect((await store.get(threadId))?.version).toBe(1);
  });

  it('records a streamed run once', async () => {
    const { store, extractor } = context;
    const sessionId = randomId('stream');
    const model = fakeModel().respond(new AIMessage('Streaming works.'));
    const agent = agentWith(model);

    const stream = await agent.stream(
      { messages: [new HumanMessage('Does streaming work?')] },
      { context: { sessionId }, streamMode: 'values' },
    );
    for await (const _chunk of stream) {
      // consume the stream to its end
    }
    await store.flush();

    expect(extractor.requests).toHaveLength(1);
    expect(extractor.requests[0]?.messages).toEqual([
      { role: 'user', content: 'Does streaming work?' },
      { role: 'assistant', content: 'Streaming works.' },
    ]);
    expect((await store.get(sessionId))?.version).toBe(1);
  });

  it('records nothing when the model call fails', async () => {
    const { store, extractor } = context;
    const sessionId = randomId('outage');
    const model = fakeModel().respond(new Error('503 from the provider'));
    const agent = agentWith(model);

    await expect(
      agent.invoke({ messages: [new HumanMessage('Hello?')] }, { context: { sessionId } }),
    ).rejects.toThrow('503 from the provider');
    await store.flush();

    expect(await store.pendingTurns(sessionId)).toEqual([]);
    expect(extractor.requests).toHaveLength(0);
    expect(await store.get(sessionId)).toBeNull();
  });

  it('passes an invocation without a session through untouched', async () => {
    const { store, extractor } = context;
    const model = fakeModel().respond(new AIMessage('Hello.'));
    const agent = agentWith(model);

    await agent.invoke({ messages: [new HumanMessage('Hi')] });
    await store.flush();

    expect(systemText(model.calls[0]!.messages)).toBe(BASE_PROMPT);
    expect(extractor.requests).toHaveLength(0);
    expect((await store.list()).items).toHaveLength(0);
  });

  it("refuses another user's session before the model is called", async () => {
    const { store } = context;
    const sessionId = randomId('private');
    await store.update({
      sessionId,
      userId: 'alice',
      messages: [{ role: 'user', content: 'My passport number is in the safe.' }],
    });
    const model = fakeModel().respond(new AIMessage('Sure.'));
    const agent = agentWith(model);

    const error = await agent
      .invoke(
        { messages: [new HumanMessage('What did Alice say?')] },
        {
          context: { sessionId, userId: 'mallory' },
        },
      )
      .catch((caught: unknown) => caught);

    // LangChain wraps what a middleware throws in its MiddlewareError; ctx's typed error is the cause.
    const cause = (error as Error).cause;
    expect(ContextError.isInstance(cause)).toBe(true);
    expect((cause as ContextError).code).toBe('OWNERSHIP_MISMATCH');
    expect(model.callCount).toBe(0);
    expect((await store.get(sessionId))?.version).toBe(1);
  });

  it("shares the runtime context with the agent's own context schema", async () => {
    const { store } = context;
    const sessionId = randomId('shared');
    await store.update({
      sessionId,
      userId: 'alice',
      messages: [{ role: 'user', content: 'Answer in Portuguese from now on.' }],
    });
    const model = fakeModel().respond(new AIMessage('Olá!'));
    const agent = createAgent({
      model,
      contextSchema: z.object({ locale: z.string() }),
      middleware: [createLangChainMiddleware({ store })],
    });

    await agent.invoke(
      { messages: [new HumanMessage('Hi')] },
      { context: { locale: 'pt-PT', sessionId, userId: 'alice' } },
    );
    await store.flush();

    expect(systemText(model.calls[0]!.messages)).toContain('Answer in Portuguese from now on.');
    expect((await store.get(sessionId))?.version).toBe(2);
  });

  it('keeps the block within maxChars', async () => {
    const { store } = context;
    const sessionId = randomId('budget');
    await store.update({
      sessionId,
      messages: [{ role: 'user', content: `Remember this: ${'many details '.repeat(200)}` }],
    });
    const model = fakeModel().respond(new AIMessage('Ok.'));
    const agent = createAgent({
      model,
      middleware: [createLangChainMiddleware({ store, maxChars: 200 })],
    });

    await agent.invoke({ messages: [new HumanMessage('Go on.')] }, { context: { sessionId } });

    const system = systemText(model.calls[0]!.messages);
    expect(system.startsWith('<session_context>')).toBe(true);
    expect(system.length).toBeLessThanOrEqual(200);
  });

  it('refuses invalid options when it is built', () => {
    const codeOf = (build: () => unknown) => {
      try {
        build();
      } catch (error) {
        return ContextError.isInstance(error) ? error.code : 'not a ContextError';
      }
      return 'no error';
    };
    const { store } = context;
    expect(codeOf(() => createLangChainMiddleware({ store, maxChars: 10 }))).toBe('INVALID_CONFIG');
    expect(codeOf(() => createLangChainMiddleware({ store, maxToolResultChars: -1 }))).toBe(
      'INVALID_CONFIG',
    );
    expect(
      codeOf(() => createLangChainMiddleware({ store: {} as unknown as SessionContextStore })),
    ).toBe('INVALID_CONFIG');
  });
});
