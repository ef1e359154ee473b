import { ExtractionError, type ExtractionRequest, MAX_RETRY_AFTER_MS } from '@ctx/core';
import { GoogleGenAI } from '@google/genai';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createGeminiExtractor } from '../src/index.js';
import { geminiReplies, startGeminiServer } from './helpers/gemini-server.js';

// The Gemini-specific side of robustness. The conformance suite (test/conformance.test.ts) covers
// what every adapter must survive: bodies that are not the provider's JSON, string token counts,
// absurd retry-after headers and loose models; here are an injected client, Gemini's response
// shape, its thoughts count and its RetryInfo.

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
  // On a client the extractor creates, its own fetch catches these (the conformance suite). On an
  // injected client the SDK parses the body itself: bodies it cannot parse (its SyntaxError) and a
  // parsed body of the wrong shape must fail the same way. Bare JSON values (`[]`, `"ok"`, `null`)
  // are caught only by the extractor's own fetch, so they are not repeated here.
  it.each([
    { name: 'an HTML page from a proxy', rawBody: HTML_PAGE, contentType: 'text/html' },
    { name: 'an HTML page labelled as JSON', rawBody: HTML_PAGE, contentType: 'application/json' },
    {
      name: 'JSON cut off in the middle',
      rawBody: '{"candidates":[{"content":{"parts":[{"text":"{\\"summ',
      contentType: 'application/json',
    },
    { name: 'an empty body', rawBody: '', contentType: 'application/json' },
    {
      name: 'candidates that are not a list',
      rawBody: '{"candidates":"none"}',
      contentType: 'application/json',
    },
  ])(
    '$name on an injected client fails as a retryable server_error',
    async ({ rawBody, contentType }) => {
      server.enqueue({ status: 200, rawBody, contentType });
      const error = await failure(injected().extract(summaryRequest));
      expect(error.code).toBe('EXTRACTION_FAILED');
      expect(error.reason, error.message).toBe('server_error');
      expect(error.retryable).toBe(true);
      expect(error.message).toMatch(/HTTP 200|not JSON|not a Gemini/);
      expect(error.message).not.toMatch(/Cannot use 'in' operator|Cannot read properties/);
    },
  );

  it('candidates that are not a list fail as a retryable server_error', async () => {
    server.enqueue({
      status: 200,
      rawBody: '{"candidates":"none"}',
      contentType: 'application/json',
    });
    const error = await failure(extractor().extract(summaryRequest));
    expect(error.reason, error.message).toBe('server_error');
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/not a Gemini/);
  });
});

describe('token usage', () => {
  it('a string thoughts count is ignored, and the extraction is kept', async () => {
    const reply = geminiReplies.text('{"summary":"Trip to Lisbon."}');
    server.enqueue({
      ...reply,
      body: {
        ...(reply.body as object),
        usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 3, thoughtsTokenCount: '5' },
      },
    });
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
});

it('a RetryInfo.retryDelay of 10^20 seconds is clamped to MAX_RETRY_AFTER_MS', async () => {
  server.enqueue(geminiReplies.error(429, { retryDelay: `1${'0'.repeat(20)}s` }));
  const error = await failure(extractor().extract(summaryRequest));
  expect(error.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
  expect(error.message).toContain('retry in 600 s');
});
