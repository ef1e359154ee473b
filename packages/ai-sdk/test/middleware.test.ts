import {
  ContextError,
  createMemoryRepository,
  type Message,
  type SessionContextEvent,
  SessionContextStore,
  StorageError,
} from '@ctx/core';
import { createScriptedExtractor, type ScriptedExtractor } from '@ctx/core/testing';
import { generateText, stepCountIs, streamText, tool, wrapLanguageModel } from 'ai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createSessionContextMiddleware,
  type SessionContextMiddleware,
  type SessionContextMiddlewareErrorInfo,
} from '../src/index.js';
import {
  AI_SDK_MAJOR,
  controlledStream,
  MockLanguageModel,
  streamResult,
  textResult,
  textStreamParts,
  toolCallResult,
  usage,
} from './helpers/models.js';

const SYSTEM = 'You are a helpful assistant.';

let extractor: ScriptedExtractor;
let events: SessionContextEvent[];
let store: SessionContextStore;
let sessionId: string;
let errors: { error: ContextError; info: SessionContextMiddlewareErrorInfo }[];
let middleware: SessionContextMiddleware;

function newStore(repository = createMemoryRepository()) {
  return new SessionContextStore({
    repository,
    extractor,
    config: { onEvent: (event) => events.push(event) },
  });
}

beforeEach(() => {
  sessionId = `s-${crypto.randomUUID()}`;
  events = [];
  errors = [];
  extractor = createScriptedExtractor({
    fallback: (request) => ({
      summary: `${request.previous?.summary ?? ''}[${request.messages.length} messages]`.trim(),
    }),
  });
  store = newStore();
  middleware = createSessionContextMiddleware({
    store,
    onError: (error, info) => errors.push({ error, info }),
  });
});

afterEach(async () => {
  await middleware.flush();
  await store.close();
});

/** Every message the extractor was given, over all folds, in order. */
const folded = (): Message[] => extractor.requests.flatMap((request) => request.messages);
/** How many turns the folds took from the log. */
const foldedTurns = () =>
  events.reduce((count, event) => count + (event.type === 'updated' ? event.turns : 0), 0);

/** Resolves once `condition` holds (checked every 5 ms). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function seed(summary: string, userId = 'alice') {
  const seeded = createScriptedExtractor({ replies: [{ summary }] });
  const seeder = new SessionContextStore({ repository: store.repository, extractor: seeded });
  await seeder.update({ sessionId, userId, messages: [{ role: 'user', content: 'seed' }] });
}

describe('before the call', () => {
  it('appends the session context block to the system prompt the model receives', async () => {
    await seed('User plans a week in Lisbon in May.');
    const model = new MockLanguageModel({ doGenerate: textResult('Book the flights first.') });
    const { text } = await generateText({
      model: wrapLanguageModel({ model, middleware }),
      system: SYSTEM,
      prompt: 'What next?',
      providerOptions: { ctx: { sessionId, userId: 'alice' } },
    });
    expect(text).toBe('Book the flights first.');
    expect(model.doGenerateCalls[0]?.prompt[0]).toEqual({
      role: 'system',
      content: `${SYSTEM}\n\n<session_context>\nSummary: User plans a week in Lisbon in May.\n</session_context>`,
    });
  });

  it('adds a system message when the call has none, and nothing while the session has no context', async () => {
    const model = new MockLanguageModel({
      doGenerate: [textResult('first'), textResult('second')],
    });
    const wrapped = wrapLanguageModel({ model, middleware });
    await generateText({
      model: wrapped,
      prompt: 'Hello',
      providerOptions: { ctx: { sessionId } },
    });
    expect(model.doGenerateCalls[0]?.prompt.map((message) => message.role)).toEqual(['user']);

    await middleware.flush();
    await generateText({
      model: wrapped,
      prompt: 'Again',
      providerOptions: { ctx: { sessionId } },
    });
    expect(model.doGenerateCalls[1]?.prompt[0]).toEqual({
      role: 'system',
      content: '<session_context>\nSummary: [2 messages]\n</session_context>',
    });
  });

  it('adds the block once: not again when a system message already holds one, but when the prompt only mentions the tag', async () => {
    await seed('User plans a week in Lisbon in May.');
    const block =
      '<session_context>\nSummary: User plans a week in Lisbon in May.\n</session_context>';
    const mentions = 'When a <session_context> block follows, rely on it for older turns.';
    const model = new MockLanguageModel({ doGenerate: [textResult('a'), textResult('b')] });
    const wrapped = wrapLanguageModel({ model, middleware });
    await generateText({
      model: wrapped,
      system: mentions,
      prompt: 'Hi',
      providerOptions: { ctx: { sessionId } },
    });
    await generateText({
      model: wrapped,
      system: `${SYSTEM}\n\n${block}`,
      prompt: 'Hi',
      providerOptions: { ctx: { sessionId } },
    });
    expect(model.doGenerateCalls[0]?.prompt[0]).toEqual({
      role: 'system',
      content: `${mentions}\n\n${block}`,
    });
    expect(model.doGenerateCalls[1]?.prompt[0]).toEqual({
      role: 'system',
      content: `${SYSTEM}\n\n${block}`,
    });
  });

  it('removes providerOptions.ctx before the provider, and keeps the other providers’ options', async () => {
    const model = new MockLanguageModel({ doGenerate: [textResult('a'), textResult('b')] });
    const wrapped = wrapLanguageModel({ model, middleware });
    await generateText({
      model: wrapped,
      prompt: 'Hi',
      providerOptions: { ctx: { sessionId }, openai: { user: 'alice' } },
    });
    await generateText({ model: wrapped, prompt: 'Hi', providerOptions: { ctx: { sessionId } } });
    expect(model.doGenerateCalls[0]?.providerOptions).toEqual({ openai: { user: 'alice' } });
    expect(model.doGenerateCalls[1]?.providerOptions).toBeUndefined();
  });

  it('fails the call, without calling the model, when the session belongs to another user', async () => {
    await seed('Alice’s private plans.', 'alice');
    const model = new MockLanguageModel({ doGenerate: textResult('never') });
    const call = generateText({
      model: wrapLanguageModel({ model, middleware }),
      prompt: 'Show me the context',
      providerOptions: { ctx: { sessionId, userId: 'bob' } },
    });
    await expect(call).rejects.toMatchObject({ code: 'OWNERSHIP_MISMATCH' });
    expect(model.doGenerateCalls).toHaveLength(0);
  });

  it('refuses malformed providerOptions.ctx with INVALID_INPUT (a misspelt key is not ignored)', async () => {
    const model = new MockLanguageModel({ doGenerate: textResult('never') });
    const wrapped = wrapLanguageModel({ model, middleware });
    for (const ctx of [{ sessionID: sessionId }, { sessionId: 42 }, { sessionId, userId: 7 }]) {
      const call = generateText({
        model: wrapped,
        prompt: 'Hi',
        providerOptions: { ctx: ctx as never },
      });
      await expect(call).rejects.toSatisfy(
        (error) =>
          ContextError.hasCode(error, 'INVALID_INPUT') &&
          /providerOptions\.ctx/.test(String(error)),
      );
    }
    const tooLong = generateText({
      model: wrapped,
      prompt: 'Hi',
      providerOptions: { ctx: { sessionId: 'x'.repeat(300) } },
    });
    await expect(tooLong).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    expect(model.doGenerateCalls).toHaveLength(0);
  });

  it('goes on without the block when the context cannot be read, and reports it', async () => {
    const repository = createMemoryRepository();
    // The backend is down for reads: get fails the way a driver's outage does.
    const outage = new Proxy(repository, {
      get(target, property, receiver) {
        if (property === 'get') {
          return async () => {
            throw new StorageError('STORAGE_UNAVAILABLE', 'connection refused');
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const down = newStore(outage);
    const downMiddleware = createSessionContextMiddleware({
      store: down,
      onError: (error, info) => errors.push({ error, info }),
    });
    const model = new MockLanguageModel({ doGenerate: textResult('still here') });
    const { text } = await generateText({
      model: wrapLanguageModel({ model, middleware: downMiddleware }),
      system: SYSTEM,
      prompt: 'Hi',
      providerOptions: { ctx: { sessionId } },
    });
    await downMiddleware.flush();
    expect(text).toBe('still here');
    expect(model.doGenerateCalls[0]?.prompt[0]).toEqual({ role: 'system', content: SYSTEM });
    expect(errors[0]).toMatchObject({
      error: { code: 'STORAGE_UNAVAILABLE' },
      info: { sessionId, phase: 'render' },
    });
    await down.close();
  });
});

describe('without a session id', () => {
  it('passes the call through untouched and records nothing', async () => {
    await seed('Something that must not leak.');
    const plain = new MockLanguageModel({ doGenerate: textResult('same') });
    const model = new MockLanguageModel({ doGenerate: textResult('same') });
    const request = {
      system: SYSTEM,
      prompt: 'Hi',
      providerOptions: { openai: { user: 'x' } },
      temperature: 0.2,
    };
    await generateText({ model: plain, ...request });
    await generateText({ model: wrapLanguageModel({ model, middleware }), ...request });
    await generateText({
      model: wrapLanguageModel({ model, middleware }),
      ...request,
      providerOptions: { ...request.providerOptions, ctx: { sessionId: null } },
    });
    await middleware.flush();
    expect(model.doGenerateCalls[0]).toEqual(plain.doGenerateCalls[0]);
    expect(model.doGenerateCalls[1]).toEqual(plain.doGenerateCalls[0]);
    expect(extractor.requests).toEqual([]);
  });
});

describe('after the call', () => {
  it('records a generateText turn once: the new user message and the reply', async () => {
    const model = new MockLanguageModel({ doGenerate: textResult('PATCH for partial updates.') });
    await generateText({
      model: wrapLanguageModel({ model, middleware }),
      system: SYSTEM,
      messages: [
        { role: 'user', content: 'We design a todo API.' },
        { role: 'assistant', content: 'Sure.' },
        { role: 'user', content: [{ type: 'text', text: 'PUT or PATCH?' }] },
      ],
      providerOptions: { ctx: { sessionId, userId: 'alice' } },
    });
    await middleware.flush();
    expect(folded()).toEqual([
      { role: 'user', content: 'PUT or PATCH?' },
      { role: 'assistant', content: 'PATCH for partial updates.' },
    ]);
    expect(foldedTurns()).toBe(1);
    expect(await store.get(sessionId)).toMatchObject({ userId: 'alice', version: 1 });
    expect(errors).toEqual([]);
  });

  it('records a streamText turn once, when the stream has finished', async () => {
    const model = new MockLanguageModel({
      doStream: streamResult(textStreamParts(['Use ', 'PATCH', '.'])),
    });
    const result = streamText({
      model: wrapLanguageModel({ model, middleware }),
      prompt: 'PUT or PATCH?',
      providerOptions: { ctx: { sessionId } },
    });
    expect(await result.text).toBe('Use PATCH.');
    await middleware.flush();
    expect(folded()).toEqual([
      { role: 'user', content: 'PUT or PATCH?' },
      { role: 'assistant', content: 'Use PATCH.' },
    ]);
    expect(foldedTurns()).toBe(1);
  });

  it('records a tool-call turn step by step, every message once', async () => {
    const model = new MockLanguageModel({
      doGenerate: [toolCallResult('weather', { city: 'Lisbon' }), textResult('21 °C and sunny.')],
    });
    const result = await generateText({
      model: wrapLanguageModel({ model, middleware }),
      prompt: 'Weather in Lisbon?',
      tools: {
        weather: tool({
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => ({ city, temperature: 21 }),
        }),
      },
      stopWhen: stepCountIs(3),
      providerOptions: { ctx: { sessionId } },
    });
    expect(result.text).toBe('21 °C and sunny.');
    await middleware.flush();
    expect(folded()).toEqual([
      { role: 'user', content: 'Weather in Lisbon?' },
      { role: 'assistant', content: '[tool call weather: {"city":"Lisbon"}]' },
      {
        role: 'tool',
        content: '[tool result weather: {"city":"Lisbon","temperature":21}]',
      },
      { role: 'assistant', content: '21 °C and sunny.' },
    ]);
    expect(foldedTurns()).toBe(2);
    // Step 1's fold waited for step 2: the loop cost one extraction.
    expect(extractor.requests).toHaveLength(1);
    // The ctx key reached the model in neither step.
    expect(model.doGenerateCalls.map((call) => call.providerOptions)).toEqual([
      undefined,
      undefined,
    ]);
  });

  it('records a streamText tool-call turn step by step, every message once', async () => {
    const model = new MockLanguageModel({
      doStream: [
        streamResult([
          { type: 'stream-start', warnings: [] },
          {
            type: 'tool-call',
            toolCallId: 'call-1',
            toolName: 'weather',
            input: JSON.stringify({ city: 'Lisbon' }),
          },
          {
            type: 'finish',
            finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
            usage: usage(),
          },
        ]),
        streamResult(textStreamParts(['21 °C ', 'and sunny.'])),
      ],
    });
    const result = streamText({
      model: wrapLanguageModel({ model, middleware }),
      prompt: 'Weather in Lisbon?',
      tools: {
        weather: tool({
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => ({ city, temperature: 21 }),
        }),
      },
      stopWhen: stepCountIs(3),
      providerOptions: { ctx: { sessionId } },
    });
    expect(await result.text).toBe('21 °C and sunny.');
    await middleware.flush();
    expect(folded()).toEqual([
      { role: 'user', content: 'Weather in Lisbon?' },
      { role: 'assistant', content: '[tool call weather: {"city":"Lisbon"}]' },
      { role: 'tool', content: '[tool result weather: {"city":"Lisbon","temperature":21}]' },
      { role: 'assistant', content: '21 °C and sunny.' },
    ]);
    expect(foldedTurns()).toBe(2);
    expect(extractor.requests).toHaveLength(1);
  });

  it('folds a loop that stops at a tool call when toolCallFoldDelayMs is up, or at once with 0', async () => {
    for (const toolCallFoldDelayMs of [150, 0]) {
      extractor.requests.length = 0;
      const own = createSessionContextMiddleware({ store, toolCallFoldDelayMs });
      const model = new MockLanguageModel({
        doGenerate: [toolCallResult('weather', { city: 'Lisbon' })],
      });
      await generateText({
        model: wrapLanguageModel({ model, middleware: own }),
        prompt: 'Weather in Lisbon?',
        tools: {
          weather: tool({
            inputSchema: z.object({ city: z.string() }),
            execute: async ({ city }) => ({ city, temperature: 21 }),
          }),
        },
        stopWhen: stepCountIs(1),
        providerOptions: { ctx: { sessionId: `${sessionId}-${toolCallFoldDelayMs}` } },
      });
      const started = performance.now();
      await until(() => extractor.requests.length === 1);
      const waited = performance.now() - started;
      if (toolCallFoldDelayMs > 0) expect(waited).toBeGreaterThanOrEqual(100);
      expect(folded()).toEqual([
        { role: 'user', content: 'Weather in Lisbon?' },
        { role: 'assistant', content: '[tool call weather: {"city":"Lisbon"}]' },
      ]);
    }
  });

  it('records what the user saw of an aborted stream, marked as interrupted', async () => {
    const provider = controlledStream();
    const model = new MockLanguageModel({ doStream: provider.doStream });
    const abort = new AbortController();
    const result = streamText({
      model: wrapLanguageModel({ model, middleware }),
      prompt: 'Tell me a long story.',
      abortSignal: abort.signal,
      providerOptions: { ctx: { sessionId } },
      onError: () => {},
    });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const delta of result.textStream) {
        seen.push(delta);
        if (seen.length === 2) abort.abort();
      }
    })();
    for (const part of textStreamParts(['Once ', 'upon ', 'a time']).slice(0, 4)) {
      provider.push(part);
    }
    await reading.catch(() => {});
    await middleware.flush();
    expect(seen.join('')).toBe('Once upon ');
    expect(folded()).toEqual([
      { role: 'user', content: 'Tell me a long story.' },
      { role: 'assistant', content: 'Once upon \n[reply interrupted]' },
    ]);
    expect(foldedTurns()).toBe(1);
  });

  it('records nothing for a stream aborted before any reply, a failed stream or a failed call', async () => {
    const provider = controlledStream();
    const abort = new AbortController();
    const abortedModel = new MockLanguageModel({ doStream: provider.doStream });
    const aborted = streamText({
      model: wrapLanguageModel({ model: abortedModel, middleware }),
      prompt: 'Never answered',
      abortSignal: abort.signal,
      providerOptions: { ctx: { sessionId } },
      onError: () => {},
    });
    provider.push({ type: 'stream-start', warnings: [] });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(abortedModel.doStreamCalls).toHaveLength(1);
    abort.abort();
    await aborted.consumeStream();

    const failing = streamText({
      model: wrapLanguageModel({
        model: new MockLanguageModel({
          doStream: streamResult([
            ...textStreamParts(['Half an ans']).slice(0, 3),
            { type: 'error', error: new Error('overloaded') },
          ]),
        }),
        middleware,
      }),
      prompt: 'Failed stream',
      providerOptions: { ctx: { sessionId } },
      onError: () => {},
    });
    await failing.consumeStream();

    const model = new MockLanguageModel({
      doGenerate: async () => {
        throw new Error('provider down');
      },
    });
    await expect(
      generateText({
        model: wrapLanguageModel({ model, middleware }),
        prompt: 'Failed call',
        maxRetries: 0,
        providerOptions: { ctx: { sessionId } },
      }),
    ).rejects.toThrow('provider down');
    await middleware.flush();
    expect(extractor.requests).toEqual([]);
    expect(await store.pendingTurns(sessionId)).toEqual([]);
  });

  it('never fails the reply when the turn cannot be recorded, and reports why', async () => {
    await seed('Alice’s session.', 'alice');
    // While the model answers, the session is deleted and re-created by another user: the
    // ownership check of the recording refuses Alice's turn.
    const model = new MockLanguageModel({
      doGenerate: async () => {
        await store.delete(sessionId);
        await seed('Now Bob’s session.', 'bob');
        return textResult('Here is the answer.');
      },
    });
    const { text } = await generateText({
      model: wrapLanguageModel({ model, middleware }),
      prompt: 'Hi',
      providerOptions: { ctx: { sessionId, userId: 'alice' } },
    });
    await middleware.flush();
    expect(text).toBe('Here is the answer.');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      error: { code: 'OWNERSHIP_MISMATCH' },
      info: { sessionId, phase: 'record' },
    });
    expect(await store.get(sessionId)).toMatchObject({
      userId: 'bob',
      summary: 'Now Bob’s session.',
    });
  });

  it('records the turns of one session in the order the calls finished, even when a write is slow', async () => {
    const repository = createMemoryRepository();
    let slowWrites = 1;
    // The first turn's write to the log takes a while (a busy database); the second is fast.
    const slow = new Proxy(repository, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (property === 'recordTurn' && typeof value === 'function') {
          return async (...args: unknown[]) => {
            if (slowWrites-- > 0) await new Promise((resolve) => setTimeout(resolve, 100));
            return value.apply(target, args);
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const slowStore = newStore(slow);
    const slowMiddleware = createSessionContextMiddleware({ store: slowStore });
    const model = wrapLanguageModel({
      model: new MockLanguageModel({ doGenerate: [textResult('one'), textResult('two')] }),
      middleware: slowMiddleware,
    });
    const ask = (prompt: string) =>
      generateText({ model, prompt, providerOptions: { ctx: { sessionId } } });
    await ask('first');
    await ask('second');
    await slowMiddleware.flush();
    expect(folded()).toEqual([
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'one' },
      { role: 'user', content: 'second' },
      { role: 'assistant', content: 'two' },
    ]);
    await slowStore.close();
  });

  it('hands every recording to waitUntil', async () => {
    const handed: Promise<unknown>[] = [];
    const withWaitUntil = createSessionContextMiddleware({
      store,
      waitUntil: (promise) => handed.push(promise),
    });
    const model = new MockLanguageModel({ doGenerate: textResult('ok') });
    await generateText({
      model: wrapLanguageModel({ model, middleware: withWaitUntil }),
      prompt: 'Hi',
      providerOptions: { ctx: { sessionId } },
    });
    expect(handed).toHaveLength(1);
    await Promise.all(handed);
    await store.flush();
    expect(folded()).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'ok' },
    ]);
  });
});

describe('options', () => {
  it('runs against the AI SDK major the run asked for', () => {
    expect(AI_SDK_MAJOR).toBe(process.env.CTX_AI_SDK_MAJOR === '7' ? 7 : 6);
  });

  it('refuses a missing store and bad options with INVALID_CONFIG', () => {
    expect(() => createSessionContextMiddleware({} as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
    expect(() => createSessionContextMiddleware({ store, onError: 'log' as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
    expect(() => createSessionContextMiddleware({ store, maxToolChars: -1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT' }),
    );
    for (const toolCallFoldDelayMs of [-1, 1.5, 3_600_001, '100' as never]) {
      expect(() => createSessionContextMiddleware({ store, toolCallFoldDelayMs })).toThrow(
        expect.objectContaining({
          code: 'INVALID_CONFIG',
          message: expect.stringMatching(/toolCallFoldDelayMs/),
        }),
      );
    }
  });
});
