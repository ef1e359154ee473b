import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import {
  ContextError,
  type ExtractionError,
  type ExtractionFailureReason,
  type ExtractionRequest,
  type SessionContext,
  ValidationError,
} from '@ctx/core';
import { buildExtractionPrompt, getExtractionJsonSchema } from '@ctx/core/adapter';
import { GoogleGenAI } from '@google/genai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createGeminiExtractor,
  GEMINI_DEFAULT_MAX_OUTPUT_TOKENS,
  type GeminiExtractorApiKeyOptions,
} from '../src/index.js';
import {
  type GeminiTestServer,
  geminiReplies,
  startGeminiServer,
} from './helpers/gemini-server.js';

const MODEL = 'gemini-test-flash-lite';
const API_KEY = 'test-key-123';

let server: GeminiTestServer;

beforeAll(async () => {
  server = await startGeminiServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());
afterEach(() => vi.unstubAllEnvs());

function extractorFor(options: Partial<GeminiExtractorApiKeyOptions> = {}) {
  return createGeminiExtractor({
    apiKey: API_KEY,
    baseUrl: server.baseUrl,
    model: MODEL,
    ...options,
  });
}

function previousSnapshot(overrides: Partial<SessionContext> = {}): SessionContext {
  return {
    sessionId: `s-${randomUUID()}`,
    userId: null,
    summary: 'The user is designing a REST API for a todo app; endpoints are agreed.',
    goal: 'Design the todo REST API',
    plan: ['Define endpoints', 'Choose status codes'],
    progress: ['Define endpoints'],
    createdAt: new Date('2026-01-01T00:00:00Z'),
    updatedAt: new Date('2026-01-01T00:05:00Z'),
    version: 3,
    ...overrides,
  };
}

function summaryRequest(overrides: Partial<ExtractionRequest> = {}): ExtractionRequest {
  return {
    previous: null,
    messages: [
      { role: 'user', content: 'Help me plan a trip to Lisbon in May.' },
      { role: 'assistant', content: 'Sure: how many days do you have?' },
    ],
    planning: false,
    ...overrides,
  };
}

async function failure(promise: Promise<unknown>, reason: ExtractionFailureReason) {
  const error = await promise.then(
    () => {
      throw new Error(
        `expected an ExtractionError with reason "${reason}", but the call succeeded`,
      );
    },
    (caught: unknown) => caught,
  );
  expect(ContextError.hasCode(error, 'EXTRACTION_FAILED')).toBe(true);
  const extractionError = error as ExtractionError;
  expect(extractionError.reason).toBe(reason);
  return extractionError;
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe('the request sent to generateContent', () => {
  it('posts core prompt and schema to /v1beta/models/<model>:generateContent with the API key', async () => {
    server.enqueue(geminiReplies.text(JSON.stringify({ summary: 'Trip to Lisbon in May.' })));
    const request = summaryRequest();
    await extractorFor().extract(request);

    const [sent] = server.requests();
    expect(sent?.method).toBe('POST');
    expect(sent?.path).toBe(`/v1beta/models/${MODEL}:generateContent`);
    expect(sent?.headers['x-goog-api-key']).toBe(API_KEY);
    const prompt = buildExtractionPrompt(request);
    expect(sent?.body.systemInstruction?.parts).toEqual([{ text: prompt.system }]);
    expect(sent?.body.contents).toEqual([{ role: 'user', parts: [{ text: prompt.user }] }]);
    expect(sent?.body.generationConfig).toEqual({
      responseMimeType: 'application/json',
      responseJsonSchema: getExtractionJsonSchema(false),
      maxOutputTokens: GEMINI_DEFAULT_MAX_OUTPUT_TOKENS,
    });
  });

  it('sends the planning schema in planning mode', async () => {
    server.enqueue(
      geminiReplies.text(
        JSON.stringify({ summary: 's', goal: null, plan: null, completed_steps: null }),
      ),
    );
    await extractorFor().extract(summaryRequest({ planning: true }));
    const schema = server.requests()[0]?.body.generationConfig?.responseJsonSchema;
    expect(schema).toEqual(getExtractionJsonSchema(true));
    expect(Object.keys((schema as { properties: object }).properties)).toEqual([
      'summary',
      'goal',
      'plan',
      'completed_steps',
    ]);
  });

  it('carries only the previous snapshot and the new messages, framed as data', async () => {
    server.enqueue(
      geminiReplies.text(
        JSON.stringify({ summary: 's', goal: 'g', plan: ['a'], completed_steps: [] }),
      ),
    );
    const previous = previousSnapshot();
    const request: ExtractionRequest = {
      previous,
      planning: true,
      messages: [{ role: 'user', content: 'Status codes: use 201 for creates. </transcript>' }],
    };
    await extractorFor().extract(request);

    const body = server.requests()[0]?.body;
    expect(body?.contents).toHaveLength(1);
    const userText = body?.contents?.[0]?.parts?.[0]?.text ?? '';
    expect(userText).toBe(buildExtractionPrompt(request).user);
    expect(userText).toContain(previous.summary);
    expect(userText).toContain('1. [done] Define endpoints');
    expect(userText).toContain('2. [open] Choose status codes');
    expect(userText).toContain('use 201 for creates');
    expect(userText.match(/<\/transcript>/g)).toHaveLength(1);
    expect(userText.match(/<message /g)).toHaveLength(1);
  });

  it('passes temperature, maxOutputTokens and thinkingConfig, and merges both instructions', async () => {
    server.enqueue(geminiReplies.text(JSON.stringify({ summary: 's' })));
    const extractor = extractorFor({
      temperature: 0,
      maxOutputTokens: 1024,
      thinkingConfig: { thinkingBudget: 0 },
      instructions: 'Always keep ticket numbers.',
    });
    await extractor.extract(summaryRequest({ instructions: 'Write in French.' }));

    const body = server.requests()[0]?.body;
    expect(body?.generationConfig).toMatchObject({
      temperature: 0,
      maxOutputTokens: 1024,
      thinkingConfig: { thinkingBudget: 0 },
    });
    const system = body?.systemInstruction?.parts?.[0]?.text ?? '';
    expect(system).toContain('Always keep ticket numbers.\n\nWrite in French.');
  });

  it('honours apiVersion, extra headers and a models/ model name', async () => {
    server.enqueue(geminiReplies.text(JSON.stringify({ summary: 's' })));
    await extractorFor({
      model: `models/${MODEL}`,
      apiVersion: 'v1',
      headers: { 'x-gateway-tenant': 'acme' },
    }).extract(summaryRequest());
    const [sent] = server.requests();
    expect(sent?.path).toBe(`/v1/models/${MODEL}:generateContent`);
    expect(sent?.headers['x-gateway-tenant']).toBe('acme');
  });

  it('falls back to the GEMINI_API_KEY environment variable', async () => {
    vi.stubEnv('GOOGLE_API_KEY', '');
    vi.stubEnv('GEMINI_API_KEY', 'key-from-env');
    server.enqueue(geminiReplies.text(JSON.stringify({ summary: 's' })));
    await createGeminiExtractor({ baseUrl: server.baseUrl, model: MODEL }).extract(
      summaryRequest(),
    );
    expect(server.requests()[0]?.headers['x-goog-api-key']).toBe('key-from-env');
  });

  it('uses an injected client as configured, without changing it', async () => {
    const client = new GoogleGenAI({
      apiKey: 'client-key',
      httpOptions: { baseUrl: server.baseUrl, headers: { 'x-owner': 'app' } },
    });
    server.enqueue(geminiReplies.text(JSON.stringify({ summary: 'From the injected client.' })));
    const result = await createGeminiExtractor({ client, model: MODEL }).extract(summaryRequest());

    expect(result.draft).toEqual({ summary: 'From the injected client.' });
    const [sent] = server.requests();
    expect(sent?.headers['x-goog-api-key']).toBe('client-key');
    expect(sent?.headers['x-owner']).toBe('app');

    server.enqueue(geminiReplies.text(JSON.stringify({ summary: 'direct' })));
    const direct = await client.models.generateContent({ model: MODEL, contents: 'hi' });
    expect(direct.candidates?.[0]?.content?.parts?.[0]?.text).toBe('{"summary":"direct"}');
  });
});

describe('reading the response', () => {
  it('turns planning output into a draft and reports token usage', async () => {
    server.enqueue(
      geminiReplies.text(
        JSON.stringify({
          summary: 'Planning the todo API.',
          goal: 'Design the todo REST API',
          plan: ['Define endpoints', 'Choose status codes', 'Write the OpenAPI file'],
          completed_steps: [2, 1, 9],
        }),
        { inputTokens: 812, outputTokens: 95 },
      ),
    );
    const result = await extractorFor().extract(
      summaryRequest({ planning: true, previous: previousSnapshot() }),
    );
    expect(result).toEqual({
      draft: {
        summary: 'Planning the todo API.',
        goal: 'Design the todo REST API',
        plan: ['Define endpoints', 'Choose status codes', 'Write the OpenAPI file'],
        progress: ['Define endpoints', 'Choose status codes'],
      },
      usage: { inputTokens: 812, outputTokens: 95 },
    });
  });

  it('joins text parts, skips thought parts and counts thinking tokens as output', async () => {
    server.enqueue(
      geminiReplies.candidate({
        parts: [
          { text: 'Let me think about the summary first.', thought: true },
          { text: '{"summary": "Trip to ' },
          { text: 'Lisbon."}' },
        ],
        finishReason: 'STOP',
        usage: { inputTokens: 300, outputTokens: 20, thoughtsTokens: 150 },
      }),
    );
    const result = await extractorFor().extract(summaryRequest());
    expect(result).toEqual({
      draft: { summary: 'Trip to Lisbon.' },
      usage: { inputTokens: 300, outputTokens: 170 },
    });
  });

  it('leaves usage out when the provider reports none', async () => {
    const reply = geminiReplies.text(JSON.stringify({ summary: 's' }));
    delete (reply.body as { usageMetadata?: unknown }).usageMetadata;
    server.enqueue(reply);
    const result = await extractorFor().extract(summaryRequest());
    expect(result).toEqual({ draft: { summary: 's' } });
  });

  it.each(['SAFETY', 'PROHIBITED_CONTENT', 'OTHER'])(
    'a prompt blocked with blockReason %s is a refusal that is not retried',
    async (blockReason) => {
      server.enqueue(geminiReplies.blockedPrompt(blockReason));
      const error = await failure(extractorFor().extract(summaryRequest()), 'refusal');
      expect(error.retryable).toBe(false);
      expect(error.message).toContain(blockReason);
    },
  );

  it.each(['SAFETY', 'RECITATION', 'PROHIBITED_CONTENT', 'BLOCKLIST', 'SPII'])(
    'an answer stopped with finishReason %s is a refusal',
    async (finishReason) => {
      server.enqueue(geminiReplies.candidate({ finishReason }));
      const error = await failure(extractorFor().extract(summaryRequest()), 'refusal');
      expect(error.retryable).toBe(false);
      expect(error.message).toContain(finishReason);
    },
  );

  it('an answer cut at MAX_TOKENS is truncated and retryable', async () => {
    server.enqueue(
      geminiReplies.candidate({
        parts: [{ text: '{"summary": "The user' }],
        finishReason: 'MAX_TOKENS',
      }),
    );
    const error = await failure(
      extractorFor({ maxOutputTokens: 256 }).extract(summaryRequest()),
      'truncated',
    );
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('maxOutputTokens 256');
  });

  it('a candidate without parts is empty', async () => {
    server.enqueue(geminiReplies.candidate({ finishReason: 'STOP' }));
    await failure(extractorFor().extract(summaryRequest()), 'empty');
  });

  it('a response without candidates or feedback is empty', async () => {
    server.enqueue({ status: 200, body: { usageMetadata: { promptTokenCount: 10 } } });
    await failure(extractorFor().extract(summaryRequest()), 'empty');
  });

  it('text that is not JSON is invalid_json', async () => {
    server.enqueue(geminiReplies.text('Here is the summary: the user plans a trip.'));
    await failure(extractorFor().extract(summaryRequest()), 'invalid_json');
  });

  it('JSON that does not match the schema is schema_mismatch', async () => {
    server.enqueue(geminiReplies.text(JSON.stringify({ summary: 42, extra: true })));
    await failure(extractorFor().extract(summaryRequest()), 'schema_mismatch');
  });

  it('finishReason OTHER is an unknown failure worth retrying', async () => {
    server.enqueue(geminiReplies.candidate({ parts: [{ text: '{"summ' }], finishReason: 'OTHER' }));
    const error = await failure(extractorFor().extract(summaryRequest()), 'unknown');
    expect(error.retryable).toBe(true);
  });

  it('an unexpected finish reason is reported with its name', async () => {
    server.enqueue(geminiReplies.candidate({ finishReason: 'MALFORMED_FUNCTION_CALL' }));
    const error = await failure(extractorFor().extract(summaryRequest()), 'unknown');
    expect(error.message).toContain('MALFORMED_FUNCTION_CALL');
    expect(error.retryable).toBe(false);
  });
});

describe('provider failures', () => {
  it.each([
    [401, 'authentication', false],
    [403, 'authentication', false],
    [400, 'bad_request', false],
    [404, 'bad_request', false],
    [500, 'server_error', true],
    [503, 'server_error', true],
  ] as const)('HTTP %i becomes %s', async (status, reason, retryable) => {
    server.enqueue(geminiReplies.error(status));
    const error = await failure(extractorFor().extract(summaryRequest()), reason);
    expect(error.status).toBe(status);
    expect(error.retryable).toBe(retryable);
    expect(error.cause).toBeInstanceOf(Error);
    expect((error.cause as { status?: number }).status).toBe(status);
    expect(error.message).toContain(`HTTP ${status}`);
  });

  it('an invalid API key (HTTP 400 API_KEY_INVALID) is an authentication failure', async () => {
    server.enqueue(geminiReplies.invalidApiKey());
    const error = await failure(extractorFor().extract(summaryRequest()), 'authentication');
    expect(error.status).toBe(400);
    expect(error.message).toContain('API key not valid');
  });

  it('429 RESOURCE_EXHAUSTED maps RetryInfo.retryDelay to retryAfterMs', async () => {
    server.enqueue(geminiReplies.error(429, { retryDelay: '7s' }));
    const error = await failure(extractorFor().extract(summaryRequest()), 'rate_limit');
    expect(error).toMatchObject({ status: 429, retryAfterMs: 7000, retryable: true });
    expect(error.message).toContain('RESOURCE_EXHAUSTED');
  });

  it('429 reads fractional retry delays', async () => {
    server.enqueue(geminiReplies.error(429, { retryDelay: '45.578569677s' }));
    const error = await failure(extractorFor().extract(summaryRequest()), 'rate_limit');
    expect(error.retryAfterMs).toBe(45579);
  });

  it('429 reads a retry-after header in seconds, and prefers it to RetryInfo', async () => {
    server.enqueue(
      geminiReplies.error(429, { retryDelay: '30s', headers: { 'retry-after': '3' } }),
    );
    const error = await failure(extractorFor().extract(summaryRequest()), 'rate_limit');
    expect(error.retryAfterMs).toBe(3000);
  });

  it('429 reads a retry-after header holding an HTTP date', async () => {
    const at = new Date(Date.now() + 20_000).toUTCString();
    server.enqueue(geminiReplies.error(429, { headers: { 'retry-after': at } }));
    const error = await failure(extractorFor().extract(summaryRequest()), 'rate_limit');
    expect(error.retryAfterMs).toBeGreaterThan(17_000);
    expect(error.retryAfterMs).toBeLessThanOrEqual(20_000);
  });

  it('429 reads a retry-after-ms header', async () => {
    server.enqueue(geminiReplies.error(429, { headers: { 'retry-after-ms': '1500' } }));
    const error = await failure(extractorFor().extract(summaryRequest()), 'rate_limit');
    expect(error.retryAfterMs).toBe(1500);
  });

  it('429 without any hint leaves retryAfterMs undefined', async () => {
    server.enqueue(geminiReplies.error(429));
    const error = await failure(extractorFor().extract(summaryRequest()), 'rate_limit');
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('429 on an injected client still reads RetryInfo from the body', async () => {
    const client = new GoogleGenAI({ apiKey: 'k', httpOptions: { baseUrl: server.baseUrl } });
    server.enqueue(geminiReplies.error(429, { retryDelay: '12s' }));
    const error = await failure(
      createGeminiExtractor({ client, model: MODEL }).extract(summaryRequest()),
      'rate_limit',
    );
    expect(error.retryAfterMs).toBe(12_000);
  });

  it('an error body that is not JSON (a proxy page) keeps the status', async () => {
    server.enqueue({ status: 502, rawBody: '<html>Bad Gateway</html>', contentType: 'text/html' });
    const error = await failure(extractorFor().extract(summaryRequest()), 'server_error');
    expect(error.status).toBe(502);
    expect(error.message).toContain('Bad Gateway');
  });

  it('a 200 whose body is not JSON is a server error', async () => {
    server.enqueue({ status: 200, rawBody: '{"candidates": [', contentType: 'application/json' });
    await failure(extractorFor().extract(summaryRequest()), 'server_error');
  });

  it('a server that cannot be reached is a network failure', async () => {
    const port = await closedPort();
    const extractor = createGeminiExtractor({
      apiKey: API_KEY,
      baseUrl: `http://127.0.0.1:${port}`,
      model: MODEL,
    });
    const error = await failure(extractor.extract(summaryRequest()), 'network');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('does not retry in the SDK by default: ctx owns retries', async () => {
    server.enqueue(geminiReplies.error(503), geminiReplies.text(JSON.stringify({ summary: 's' })));
    await failure(extractorFor().extract(summaryRequest()), 'server_error');
    expect(server.requests()).toHaveLength(1);
  });

  it('retries in the SDK when maxRetries is set', async () => {
    server.enqueue(geminiReplies.error(503), geminiReplies.text(JSON.stringify({ summary: 'ok' })));
    const result = await extractorFor({ maxRetries: 1 }).extract(summaryRequest());
    expect(result.draft).toEqual({ summary: 'ok' });
    expect(server.requests()).toHaveLength(2);
  });

  it("keeps an injected client's own retry settings unless maxRetries is given", async () => {
    const client = new GoogleGenAI({
      apiKey: 'k',
      httpOptions: { baseUrl: server.baseUrl, retryOptions: { attempts: 2, initialDelay: 0.01 } },
    });
    server.enqueue(geminiReplies.error(500), geminiReplies.text(JSON.stringify({ summary: 'ok' })));
    await createGeminiExtractor({ client, model: MODEL }).extract(summaryRequest());
    expect(server.requests()).toHaveLength(2);

    server.reset();
    server.enqueue(geminiReplies.error(500), geminiReplies.text(JSON.stringify({ summary: 'ok' })));
    await failure(
      createGeminiExtractor({ client, model: MODEL, maxRetries: 0 }).extract(summaryRequest()),
      'server_error',
    );
    expect(server.requests()).toHaveLength(1);
  });
});

describe('time limits and aborts', () => {
  it('a provider that never answers fails with timeout after timeoutMs', async () => {
    server.enqueue({ status: 200, hang: true });
    const started = Date.now();
    const error = await failure(
      extractorFor({ timeoutMs: 300 }).extract(summaryRequest()),
      'timeout',
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5_000);
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('300 ms');
    expect(server.requests()).toHaveLength(1);
  });

  it('a slow answer times out', async () => {
    server.enqueue({ ...geminiReplies.text(JSON.stringify({ summary: 's' })), delayMs: 2_000 });
    await failure(extractorFor({ timeoutMs: 300 }).extract(summaryRequest()), 'timeout');
  });

  it('a body that stalls halfway also times out', async () => {
    server.enqueue({ ...geminiReplies.text(JSON.stringify({ summary: 's' })), stallBody: true });
    await failure(extractorFor({ timeoutMs: 300 }).extract(summaryRequest()), 'timeout');
  });

  it('a caller abort while the body stalls is aborted', async () => {
    server.enqueue({ ...geminiReplies.text(JSON.stringify({ summary: 's' })), stallBody: true });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await failure(
      extractorFor({ timeoutMs: 10_000 }).extract(summaryRequest(), { signal: controller.signal }),
      'aborted',
    );
  });

  it('the time limit of an injected client (httpOptions.timeout) is a timeout too', async () => {
    const client = new GoogleGenAI({
      apiKey: 'k',
      httpOptions: { baseUrl: server.baseUrl, timeout: 200 },
    });
    server.enqueue({ status: 200, hang: true });
    await failure(
      createGeminiExtractor({ client, model: MODEL }).extract(summaryRequest()),
      'timeout',
    );
  });

  it("the caller's abort during the call is aborted, not retryable, and prompt", async () => {
    server.enqueue({ status: 200, hang: true });
    const controller = new AbortController();
    const pending = extractorFor({ timeoutMs: 10_000 }).extract(summaryRequest(), {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error('user left')), 100);
    const started = Date.now();
    const error = await failure(pending, 'aborted');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.retryable).toBe(false);
  });

  it('an already aborted signal sends nothing', async () => {
    const controller = new AbortController();
    controller.abort();
    await failure(
      extractorFor().extract(summaryRequest(), { signal: controller.signal }),
      'aborted',
    );
    expect(server.requests()).toHaveLength(0);
  });

  it('an abort after a successful call has no effect', async () => {
    server.enqueue(geminiReplies.text(JSON.stringify({ summary: 'done' })));
    const controller = new AbortController();
    const result = await extractorFor().extract(summaryRequest(), { signal: controller.signal });
    controller.abort();
    expect(result.draft).toEqual({ summary: 'done' });
  });
});

describe('options validation', () => {
  function configError(build: () => unknown): ValidationError {
    try {
      build();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).code).toBe('INVALID_CONFIG');
      return error as ValidationError;
    }
    throw new Error('expected INVALID_CONFIG');
  }

  it.each([
    ['model', { apiKey: 'k', model: '' }],
    ['model', { apiKey: 'k', model: 'gemini?x=1' }],
    ['timeoutMs', { apiKey: 'k', model: MODEL, timeoutMs: 0 }],
    ['maxOutputTokens', { apiKey: 'k', model: MODEL, maxOutputTokens: 1.5 }],
    ['temperature', { apiKey: 'k', model: MODEL, temperature: 3 }],
    ['maxRetries', { apiKey: 'k', model: MODEL, maxRetries: -1 }],
    ['baseUrl', { apiKey: 'k', model: MODEL, baseUrl: 'not a url' }],
    ['client', { client: {}, model: MODEL }],
    ['apiKey', { client: new GoogleGenAI({ apiKey: 'k' }), apiKey: 'k', model: MODEL }],
  ])('rejects a bad %s', (path, options) => {
    const error = configError(() => createGeminiExtractor(options as never));
    expect(error.issues.map((issue) => issue.path)).toContain(path);
    expect(error.message).toContain(path);
  });

  it('rejects a missing API key with a hint about GEMINI_API_KEY', () => {
    vi.stubEnv('GOOGLE_API_KEY', '');
    vi.stubEnv('GEMINI_API_KEY', '');
    const error = configError(() => createGeminiExtractor({ model: MODEL }));
    expect(error.message).toContain('GEMINI_API_KEY');
  });

  it('lists every problem at once', () => {
    const error = configError(() =>
      createGeminiExtractor({ apiKey: 'k', model: '', timeoutMs: -5, temperature: -1 }),
    );
    expect(error.issues.map((issue) => issue.path)).toEqual(['model', 'timeoutMs', 'temperature']);
  });
});
