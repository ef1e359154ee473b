import {
  createMemoryRepository,
  ExtractionError,
  type ExtractionRequest,
  MAX_RETRY_AFTER_MS,
  type SessionContextEvent,
  SessionContextStore,
} from '@ctx/core';
import { GoogleGenAI } from '@google/genai';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createGeminiExtractor } from '../src/index.js';
import { geminiReplies, startGeminiServer } from './helpers/gemini-server.js';

// What a real deployment throws at the extractor besides well-formed replies: proxies that answer
// 200 with an HTML page, bodies cut off in transit, token counts sent as strings, absurd retry
// hints, and loose models that add keys to the JSON they were asked for.

const server = await startGeminiServer();
afterAll(() => server.close());
beforeEach(() => server.reset());

const summaryRequest: ExtractionRequest = {
  previous: null,
  messages: [{ role: 'user', content: 'I want to plan a trip to Lisbon in May.' }],
  planning: false,
};

const extractor = () =>
  createGeminiExtractor({ apiKey: 'test-key', baseUrl: server.baseUrl, model: 'gemini-test' });

/** An extractor on a client the application owns (no header capture, the SDK's own settings). */
const injected = () =>
  createGeminiExtractor({
    client: new GoogleGenAI({
      apiKey: 'test-key',
      apiVersion: 'v1beta',
      httpOptions: { baseUrl: server.baseUrl },
    }),
    model: 'gemini-test',
  });

async function failure(promise: Promise<unknown>): Promise<ExtractionError> {
  const error = await promise.then(
    () => {
      throw new Error('expected the extraction to fail');
    },
    (caught: unknown) => caught,
  );
  expect(ExtractionError.isInstance(error), String(error)).toBe(true);
  return error as ExtractionError;
}

const HTML_PAGE =
  '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>';

describe('a 200 reply that is not the Gemini JSON', () => {
  // Bodies the SDK cannot parse fail the same way on an injected client (the SDK's SyntaxError);
  // the other shapes are caught by the fetch of the client the extractor creates.
  it.each([
    {
      name: 'an HTML page from a proxy',
      rawBody: HTML_PAGE,
      contentType: 'text/html',
      injectedToo: true,
    },
    {
      name: 'an HTML page labelled as JSON',
      rawBody: HTML_PAGE,
      contentType: 'application/json',
      injectedToo: true,
    },
    {
      name: 'JSON cut off in the middle',
      rawBody: '{"candidates":[{"content":{"parts":[{"text":"{\\"summ',
      contentType: 'application/json',
      injectedToo: true,
    },
    { name: 'an empty body', rawBody: '', contentType: 'application/json', injectedToo: true },
    { name: 'a JSON array', rawBody: '[]', contentType: 'application/json', injectedToo: false },
    { name: 'a JSON string', rawBody: '"ok"', contentType: 'application/json', injectedToo: false },
    { name: 'JSON null', rawBody: 'null', contentType: 'application/json', injectedToo: false },
    {
      name: 'candidates that are not a list',
      rawBody: '{"candidates":"none"}',
      contentType: 'application/json',
      injectedToo: true,
    },
  ])(
    '$name fails as a retryable server_error with a clear message',
    async ({ rawBody, contentType, injectedToo }) => {
      for (const make of injectedToo ? [extractor, injected] : [extractor]) {
        server.enqueue({ status: 200, rawBody, contentType });
        const error = await failure(make().extract(summaryRequest));
        expect(error.code).toBe('EXTRACTION_FAILED');
        expect(error.reason, error.message).toBe('server_error');
        expect(error.retryable).toBe(true);
        expect(error.message).toMatch(/HTTP 200|not JSON|not a Gemini/);
        expect(error.message).not.toMatch(/Cannot use 'in' operator|Cannot read properties/);
      }
    },
  );
});

describe('token usage', () => {
  it.each([
    { name: 'strings', usageMetadata: { promptTokenCount: '12', candidatesTokenCount: '3' } },
    {
      name: 'a string thoughts count',
      usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 3, thoughtsTokenCount: '5' },
    },
    { name: 'negative', usageMetadata: { promptTokenCount: -12, candidatesTokenCount: 3 } },
    { name: 'not an object', usageMetadata: 'lots' },
  ])('ignores counts that are $name, and keeps the extraction', async ({ usageMetadata }) => {
    const reply = geminiReplies.text('{"summary":"Trip to Lisbon."}');
    server.enqueue({ ...reply, body: { ...(reply.body as object), usageMetadata } });
    const result = await extractor().extract(summaryRequest);
    expect(result.draft).toEqual({ summary: 'Trip to Lisbon.' });
    expect(result.usage).toBeUndefined();
  });

  it('counts thoughts as output when every count is a number', async () => {
    server.enqueue(
      geminiReplies.text('{"summary":"S"}', {
        inputTokens: 10,
        outputTokens: 4,
        thoughtsTokens: 6,
      }),
    );
    const result = await extractor().extract(summaryRequest);
    expect(result.usage).toEqual({ inputTokens: 10, outputTokens: 10 });
  });

  it('never concatenates string counts in the store totals', async () => {
    const reply = geminiReplies.text('{"summary":"Trip to Lisbon."}');
    server.enqueue({
      ...reply,
      body: {
        ...(reply.body as object),
        usageMetadata: {
          promptTokenCount: '12',
          candidatesTokenCount: '3',
          thoughtsTokenCount: '4',
        },
      },
    });
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: extractor(),
    });
    const result = await store.update({
      sessionId: 'usage-gemini',
      messages: summaryRequest.messages,
    });
    expect(result.updated).toBe(true);
    expect(result.usage).toBeUndefined();
  });
});

describe('retry hints are clamped to MAX_RETRY_AFTER_MS', () => {
  it.each<{ name: string; headers: Record<string, string> }>([
    { name: 'retry-after of 10^23 seconds', headers: { 'retry-after': `1${'0'.repeat(23)}` } },
    { name: 'retry-after-ms of 10^30', headers: { 'retry-after-ms': `1${'0'.repeat(30)}` } },
    {
      name: 'an HTTP date in the year 9999',
      headers: { 'retry-after': 'Fri, 31 Dec 9999 23:59:59 GMT' },
    },
  ])('$name', async ({ headers }) => {
    server.enqueue(geminiReplies.error(429, { headers }), geminiReplies.error(503, { headers }));
    const limited = await failure(extractor().extract(summaryRequest));
    expect(limited.reason).toBe('rate_limit');
    expect(limited.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
    expect(limited.message).not.toMatch(/e\+/);
    const overloaded = await failure(extractor().extract(summaryRequest));
    expect(overloaded.reason).toBe('server_error');
    expect(overloaded.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
  });

  it('a RetryInfo.retryDelay of 10^20 seconds', async () => {
    server.enqueue(geminiReplies.error(429, { retryDelay: `1${'0'.repeat(20)}s` }));
    const error = await failure(extractor().extract(summaryRequest));
    expect(error.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
    expect(error.message).toContain('retry in 600 s');
  });
});

describe('a loose model that adds empty keys (issue 15)', () => {
  const loose = '{"summary":"The user plans a trip to Lisbon in May.","goal":null,"plan":null}';

  it('"goal": null, "plan": null in summary mode is tolerated and reported', async () => {
    server.enqueue(geminiReplies.text(loose));
    const result = await extractor().extract(summaryRequest);
    expect(result.draft).toEqual({ summary: 'The user plans a trip to Lisbon in May.' });
    expect(result.tolerated).toEqual({ droppedKeys: ['goal', 'plan'] });
  });

  it('the store updates and reports extraction-tolerated', async () => {
    const events: SessionContextEvent[] = [];
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: extractor(),
      config: { onEvent: (event) => events.push(event) },
    });
    server.enqueue(geminiReplies.text(loose));
    const result = await store.update({
      sessionId: 'loose-gemini',
      messages: summaryRequest.messages,
    });
    expect(result.context?.summary).toBe('The user plans a trip to Lisbon in May.');
    expect(events).toContainEqual({
      type: 'extraction-tolerated',
      sessionId: 'loose-gemini',
      droppedKeys: ['goal', 'plan'],
      background: false,
    });
  });

  it('still refuses a non-empty plan in summary mode', async () => {
    server.enqueue(geminiReplies.text('{"summary":"Lisbon.","plan":["Book flights"]}'));
    const error = await failure(extractor().extract(summaryRequest));
    expect(error.reason).toBe('schema_mismatch');
    expect(error.message).toContain('"plan"');
  });
});
