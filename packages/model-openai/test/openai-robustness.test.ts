import {
  createMemoryRepository,
  ExtractionError,
  type ExtractionRequest,
  MAX_RETRY_AFTER_MS,
  type SessionContextEvent,
  SessionContextStore,
} from '@ctx/core';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createOpenAIExtractor, type OpenAIExtractorApi } from '../src/index.js';
import { startOpenAITestServer } from './openai-test-server.js';

// What a real deployment throws at the extractor besides well-formed replies: proxies that answer
// 200 with an HTML page, bodies cut off in transit, servers that send token counts as strings or
// absurd retry-after values, and loose local models that add keys to the JSON they were asked for.

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

const HTML_PAGE =
  '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>The proxy could not reach the upstream.</p></body></html>';

describe.each<OpenAIExtractorApi>(['responses', 'chat'])(
  '%s API: a 200 reply that is not the provider JSON',
  (api) => {
    it.each([
      {
        name: 'an HTML page from a proxy',
        body: HTML_PAGE,
        contentType: 'text/html; charset=utf-8',
      },
      {
        name: 'an HTML page labelled as JSON',
        body: HTML_PAGE,
        contentType: 'application/json',
      },
      {
        name: 'JSON cut off in the middle',
        body: '{"id":"resp_1","object":"response","status":"completed","output":[{"type":"mess',
        contentType: 'application/json',
      },
      { name: 'an empty body', body: '', contentType: 'application/json' },
      { name: 'a JSON array', body: '[]', contentType: 'application/json' },
      { name: 'a JSON string', body: '"ok"', contentType: 'application/json' },
      { name: 'JSON null', body: 'null', contentType: 'application/json' },
      { name: 'an unrelated JSON object', body: '{"ok":true}', contentType: 'application/json' },
    ])(
      '$name fails as a retryable server_error with a clear message',
      async ({ body, contentType }) => {
        server.enqueue({ kind: 'raw_text', body, contentType });
        const error = await failure(extractor(api).extract(summaryRequest));
        expect(error.code).toBe('EXTRACTION_FAILED');
        expect(error.reason).toBe('server_error');
        expect(error.retryable).toBe(true);
        expect(error.status).toBe(200);
        expect(error.message).toMatch(/HTTP 200/);
        expect(error.message).not.toMatch(/Cannot use 'in' operator|Cannot read properties/);
      },
    );

    it('names the content type and quotes the start of an HTML body', async () => {
      server.enqueue({ kind: 'raw_text', body: HTML_PAGE, contentType: 'text/html' });
      const error = await failure(extractor(api).extract(summaryRequest));
      expect(error.message).toContain('text/html');
      expect(error.message).toContain('502 Bad Gateway');
      expect(error.message).not.toContain('The proxy could not reach the upstream'.repeat(2));
    });
  },
);

describe.each<OpenAIExtractorApi>(['responses', 'chat'])('%s API: token usage', (api) => {
  const [inputKey, outputKey] =
    api === 'responses'
      ? ['input_tokens', 'output_tokens']
      : ['prompt_tokens', 'completion_tokens'];

  it('reports counts given as numbers', async () => {
    server.enqueue({
      kind: 'output_with_usage',
      text: '{"summary":"Trip to Lisbon."}',
      usage: { [inputKey]: 120, [outputKey]: 30 },
    });
    const result = await extractor(api).extract(summaryRequest);
    expect(result.usage).toEqual({ inputTokens: 120, outputTokens: 30 });
  });

  it.each([
    { name: 'strings', usage: { [inputKey]: '12', [outputKey]: '3' } },
    { name: 'one string', usage: { [inputKey]: 12, [outputKey]: '3' } },
    { name: 'negative', usage: { [inputKey]: -1, [outputKey]: 3 } },
    { name: 'fractions', usage: { [inputKey]: 1.5, [outputKey]: 3 } },
    { name: 'missing', usage: { [inputKey]: 12 } },
    { name: 'not an object', usage: 'lots' },
  ])('ignores usage with counts that are $name, and keeps the extraction', async ({ usage }) => {
    server.enqueue({ kind: 'output_with_usage', text: '{"summary":"Trip to Lisbon."}', usage });
    const result = await extractor(api).extract(summaryRequest);
    expect(result.draft).toEqual({ summary: 'Trip to Lisbon.' });
    expect(result.usage).toBeUndefined();
  });

  it('never concatenates string counts in the store totals', async () => {
    server.enqueue({
      kind: 'output_with_usage',
      text: '{"summary":"Trip to Lisbon."}',
      usage: { [inputKey]: '12', [outputKey]: '3' },
    });
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: extractor(api),
    });
    const result = await store.update({
      sessionId: `usage-${api}`,
      messages: summaryRequest.messages,
    });
    expect(result.updated).toBe(true);
    expect(result.usage).toBeUndefined();
  });
});

describe('retry-after is clamped to MAX_RETRY_AFTER_MS', () => {
  it.each<{ name: string; headers: Record<string, string> }>([
    { name: 'retry-after of 10^23 seconds', headers: { 'retry-after': `1${'0'.repeat(23)}` } },
    { name: 'retry-after-ms of 10^30', headers: { 'retry-after-ms': `1${'0'.repeat(30)}` } },
    {
      name: 'an HTTP date in the year 9999',
      headers: { 'retry-after': 'Fri, 31 Dec 9999 23:59:59 GMT' },
    },
  ])('$name on a 429 and a 503', async ({ headers }) => {
    server.enqueue(
      { kind: 'http_error', status: 429, headers },
      { kind: 'http_error', status: 503, headers },
    );
    const limited = await failure(extractor('responses').extract(summaryRequest));
    expect(limited.reason).toBe('rate_limit');
    expect(limited.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
    expect(limited.message).not.toMatch(/e\+/);
    const overloaded = await failure(extractor('chat').extract(summaryRequest));
    expect(overloaded.reason).toBe('server_error');
    expect(overloaded.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
  });
});

describe('a loose local model in plain JSON mode (issue 15)', () => {
  const loose = '{"summary":"The user plans a trip to Lisbon in May.","goal":null,"plan":null}';

  it.each<OpenAIExtractorApi>(['responses', 'chat'])(
    '%s API: "goal": null, "plan": null in summary mode is tolerated and reported',
    async (api) => {
      server.enqueue({ kind: 'output', text: loose });
      const result = await extractor(api, 'json_object').extract(summaryRequest);
      expect(result.draft).toEqual({ summary: 'The user plans a trip to Lisbon in May.' });
      expect(result.tolerated).toEqual({ droppedKeys: ['goal', 'plan'] });
    },
  );

  it('updates the context on every turn and reports extraction-tolerated', async () => {
    const events: SessionContextEvent[] = [];
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: extractor('chat', 'json_object'),
      config: { onEvent: (event) => events.push(event) },
    });
    server.enqueue(
      { kind: 'output', text: loose },
      {
        kind: 'output',
        text: '{"summary":"Lisbon in May, flights booked.","goal":null,"plan":[],"progress":[]}',
      },
    );
    const first = await store.update({ sessionId: 'loose-1', messages: summaryRequest.messages });
    const second = await store.update({
      sessionId: 'loose-1',
      messages: [{ role: 'user', content: 'I booked the flights.' }],
    });
    expect(first.context?.summary).toBe('The user plans a trip to Lisbon in May.');
    expect(second.context?.summary).toBe('Lisbon in May, flights booked.');
    expect(second.context?.version).toBe(2);
    expect(
      events
        .filter((event) => event.type === 'extraction-tolerated')
        .map((event) => event.type === 'extraction-tolerated' && event.droppedKeys),
    ).toEqual([
      ['goal', 'plan'],
      ['goal', 'plan', 'progress'],
    ]);
  });

  it('still refuses a non-empty plan in summary mode', async () => {
    server.enqueue({
      kind: 'output',
      text: '{"summary":"Lisbon.","goal":null,"plan":["Book flights"]}',
    });
    const error = await failure(extractor('chat', 'json_object').extract(summaryRequest));
    expect(error.reason).toBe('schema_mismatch');
    expect(error.message).toContain('"plan"');
  });
});
