import { createOpenAI } from '@ai-sdk/openai';
import { createMemoryRepository, type Message, SessionContextStore } from '@ctx/core';
import { createScriptedExtractor, type ScriptedExtractor } from '@ctx/core/testing';
import { generateText, streamText, wrapLanguageModel } from 'ai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSessionContextMiddleware, type SessionContextMiddleware } from '../src/index.js';
import { type OpenAIChatServer, startOpenAIChatServer } from './helpers/openai-chat-server.js';

const SYSTEM = 'You are a helpful assistant.';
let server: OpenAIChatServer;
let extractor: ScriptedExtractor;
let store: SessionContextStore;
let middleware: SessionContextMiddleware;
let sessionId: string;

beforeAll(async () => {
  server = await startOpenAIChatServer();
});
afterAll(() => server.close());

beforeEach(async () => {
  sessionId = `s-${crypto.randomUUID()}`;
  extractor = createScriptedExtractor({
    replies: [{ summary: 'User is choosing between PUT and PATCH for a todo API.' }],
    fallback: (request) => ({ summary: `${request.previous?.summary} And more.` }),
  });
  store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
  middleware = createSessionContextMiddleware({ store });
  await store.update({
    sessionId,
    userId: 'alice',
    messages: [{ role: 'user', content: 'We are designing a todo API: PUT or PATCH?' }],
  });
});

/** The model the way an app builds it: the real provider, pointed at the local server. */
const chatModel = () =>
  wrapLanguageModel({
    model: createOpenAI({ baseURL: server.baseURL, apiKey: 'test-key' }).chat('gpt-4.1-mini'),
    middleware,
  });

const block =
  '<session_context>\nSummary: User is choosing between PUT and PATCH for a todo API.\n</session_context>';
const recorded = (): Message[] =>
  extractor.requests.slice(1).flatMap((request) => request.messages);

describe('through @ai-sdk/openai and the Chat Completions wire protocol', () => {
  it('generateText: the system message on the wire holds the block, and ctx never leaves the process', async () => {
    server.reply({ deltas: ['PATCH changes only the fields you send.'] });
    const { text } = await generateText({
      model: chatModel(),
      system: SYSTEM,
      prompt: 'Which one for marking a todo done?',
      providerOptions: { ctx: { sessionId, userId: 'alice' }, openai: { user: 'alice-hash' } },
    });
    await middleware.flush();
    const request = server.requests.at(-1);
    expect(text).toBe('PATCH changes only the fields you send.');
    expect(request?.messages).toEqual([
      { role: 'system', content: `${SYSTEM}\n\n${block}` },
      { role: 'user', content: 'Which one for marking a todo done?' },
    ]);
    expect(request?.user).toBe('alice-hash');
    expect(JSON.stringify(request)).not.toMatch(/"ctx"|"sessionId"/);
    expect(recorded()).toEqual([
      { role: 'user', content: 'Which one for marking a todo done?' },
      { role: 'assistant', content: 'PATCH changes only the fields you send.' },
    ]);
    expect(await store.get(sessionId)).toMatchObject({ version: 2 });
  });

  it('streamText: the streamed reply is recorded once, after the stream has finished', async () => {
    server.reply({ deltas: ['Use ', 'PATCH ', 'for partial updates.'] });
    const result = streamText({
      model: chatModel(),
      system: SYSTEM,
      prompt: 'Remind me which one we picked?',
      providerOptions: { ctx: { sessionId, userId: 'alice' } },
    });
    expect(await result.text).toBe('Use PATCH for partial updates.');
    await middleware.flush();
    expect(server.requests.at(-1)?.stream).toBe(true);
    expect(server.requests.at(-1)?.messages[0]).toEqual({
      role: 'system',
      content: `${SYSTEM}\n\n${block}`,
    });
    expect(recorded()).toEqual([
      { role: 'user', content: 'Remind me which one we picked?' },
      { role: 'assistant', content: 'Use PATCH for partial updates.' },
    ]);
  });

  it('streamText aborted mid-reply: the connection is dropped and the partial reply is recorded as interrupted', async () => {
    server.reply({ deltas: ['First, ', 'define ', 'the resources.'], stallAfter: 2 });
    const abort = new AbortController();
    const result = streamText({
      model: chatModel(),
      prompt: 'Write the whole API spec.',
      abortSignal: abort.signal,
      providerOptions: { ctx: { sessionId, userId: 'alice' } },
      onError: () => {},
    });
    let seen = '';
    for await (const delta of result.textStream) {
      seen += delta;
      if (seen === 'First, define ') abort.abort();
    }
    await server.clientGone();
    await middleware.flush();
    expect(seen).toBe('First, define ');
    expect(recorded()).toEqual([
      { role: 'user', content: 'Write the whole API spec.' },
      { role: 'assistant', content: 'First, define \n[reply interrupted]' },
    ]);
  });
});
