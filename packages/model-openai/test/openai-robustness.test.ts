import { ExtractionError, type ExtractionRequest } from '@ctx/core';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createOpenAIExtractor, type OpenAIExtractorApi } from '../src/index.js';
import { startOpenAITestServer } from './openai-test-server.js';

// The OpenAI-specific side of robustness. The conformance suite (test/conformance.test.ts, both
// APIs) covers what every adapter must survive: bodies that are not the provider's JSON, string
// token counts, absurd retry hints and loose models; here are the cases whose meaning depends on
// OpenAI's wire format or options.

const server = await startOpenAITestServer();
afterAll(() => server.close());
beforeEach(() => server.reset());

const summaryRequest: ExtractionRequest = {
  previous: null,
  messages: [{ role: 'user', content: 'I want to plan a trip to Lisbon in May.' }],
  planning: false,
};

function extractor(api: OpenAIExtractorApi, structuredOutput?: 'json_object') {
  return createOpenAIExtractor({
    apiKey: 'sk-test',
    baseURL: server.baseURL,
    model: 'gpt-4.1-mini',
    api,
    ...(structuredOutput ? { structuredOutput } : {}),
  });
}

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

describe.each<OpenAIExtractorApi>(['responses', 'chat'])('%s API', (api) => {
  it('a 200 reply with a JSON object of another shape fails as a retryable server_error', async () => {
    server.enqueue({ kind: 'raw', body: '{"ok":true}' });
    const error = await failure(extractor(api).extract(summaryRequest));
    expect(error.reason).toBe('server_error');
    expect(error.retryable).toBe(true);
    expect(error.status).toBe(200);
    expect(error.message).toMatch(/HTTP 200/);
    expect(error.message).not.toMatch(/Cannot use 'in' operator|Cannot read properties/);
  });

  it('usage without an output count is ignored, and the extraction is kept', async () => {
    server.enqueue({
      kind: 'odd_usage',
      text: '{"summary":"Trip to Lisbon."}',
      usage: { inputTokens: 12 },
    });
    const result = await extractor(api).extract(summaryRequest);
    expect(result.draft).toEqual({ summary: 'Trip to Lisbon.' });
    expect(result.usage).toBeUndefined();
  });

  it('plain JSON mode: "goal": null, "plan": null in summary mode is tolerated and reported (issue 15)', async () => {
    server.enqueue({
      kind: 'output',
      text: '{"summary":"The user plans a trip to Lisbon in May.","goal":null,"plan":null}',
    });
    const result = await extractor(api, 'json_object').extract(summaryRequest);
    expect(result.draft).toEqual({ summary: 'The user plans a trip to Lisbon in May.' });
    expect(result.tolerated).toEqual({ droppedKeys: ['goal', 'plan'] });
  });
});
