import {
  ExtractionError,
  type ExtractionRequest,
  type SessionContext,
  ValidationError,
} from '@ctx/core';
import {
  buildExtractionPrompt,
  EXTRACTION_SCHEMA_NAME,
  getExtractionJsonSchema,
} from '@ctx/core/adapter';
import OpenAI, {
  APIConnectionError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  UnprocessableEntityError,
} from 'openai';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createOpenAIExtractor, type OpenAIExtractorConnectionOptions } from '../src/index.js';
import { type OpenAIEndpoint, startOpenAITestServer } from './openai-test-server.js';

const server = await startOpenAITestServer();
afterAll(() => server.close());
beforeEach(() => server.reset());

const MODEL = 'gpt-4.1-mini';

const previous: SessionContext = {
  sessionId: 'session-openai-1',
  userId: 'user-1',
  summary: 'PREVIOUS-SUMMARY-MARKER: the user designs a REST API for a todo app.',
  goal: 'Design a REST API for a todo app',
  plan: ['Define resource endpoints', 'Choose HTTP methods'],
  progress: ['Define resource endpoints'],
  createdAt: new Date('2025-01-01T10:00:00.000Z'),
  updatedAt: new Date('2025-01-01T10:05:00.000Z'),
  version: 3,
};

const planningRequest: ExtractionRequest = {
  previous,
  messages: [
    { role: 'user', content: 'NEW-MESSAGE-MARKER: should updates use PUT or PATCH?' },
    { role: 'assistant', content: 'Use PATCH for partial updates of a todo.' },
  ],
  planning: true,
};

const summaryRequest: ExtractionRequest = {
  previous: null,
  messages: [{ role: 'user', content: 'Hello, I want to plan a trip to Lisbon.' }],
  planning: false,
};

const planningOutput = JSON.stringify({
  summary: 'The user designs a todo REST API and chose PATCH for partial updates.',
  goal: 'Design a REST API for a todo app',
  plan: ['Define resource endpoints', 'Choose HTTP methods'],
  completed_steps: [1, 2],
});

function extractor(overrides: Partial<OpenAIExtractorConnectionOptions> = {}) {
  return createOpenAIExtractor({
    apiKey: 'sk-test-key',
    baseURL: server.baseURL,
    model: MODEL,
    ...overrides,
  });
}

async function failure(promise: Promise<unknown>): Promise<ExtractionError> {
  const error = await promise.then(
    () => {
      throw new Error('expected the extraction to fail');
    },
    (caught: unknown) => caught,
  );
  expect(ExtractionError.isInstance(error)).toBe(true);
  expect((error as ExtractionError).code).toBe('EXTRACTION_FAILED');
  return error as ExtractionError;
}

function bodyOf(index: number): Record<string, unknown> {
  const request = server.requests()[index];
  if (!request) throw new Error(`the server received no request #${index + 1}`);
  return request.body as Record<string, unknown>;
}

function lastRequest() {
  const requests = server.requests();
  const request = requests.at(-1);
  if (!request) throw new Error('the server received no request');
  return request;
}

describe.each<{ api: 'responses' | 'chat'; endpoint: OpenAIEndpoint; path: string }>([
  { api: 'responses', endpoint: 'responses', path: '/v1/responses' },
  { api: 'chat', endpoint: 'chat', path: '/v1/chat/completions' },
])('$api API', ({ api, endpoint, path }) => {
  const make = (overrides: Partial<OpenAIExtractorConnectionOptions> = {}) =>
    extractor({ api, ...overrides });

  it('sends the strict extraction schema, the model and core prompt with only the previous snapshot and the new messages', async () => {
    server.enqueue({ kind: 'output', text: planningOutput });
    await make().extract(planningRequest);

    const request = lastRequest();
    const prompt = buildExtractionPrompt(planningRequest);
    expect(request.endpoint).toBe(endpoint);
    expect(request.path).toBe(path);
    expect(request.headers.authorization).toBe('Bearer sk-test-key');
    expect(request.model).toBe(MODEL);
    expect(request.format).toEqual({
      type: 'json_schema',
      name: EXTRACTION_SCHEMA_NAME,
      schema: getExtractionJsonSchema(true),
      strict: true,
    });
    expect(request.system).toBe(prompt.system);
    expect(request.user).toBe(prompt.user);
    expect(request.user).toContain('PREVIOUS-SUMMARY-MARKER');
    expect(request.user).toContain('NEW-MESSAGE-MARKER');
    expect(request.user).toContain('Use PATCH for partial updates of a todo.');
  });

  it('sends exactly the documented request body', async () => {
    server.enqueue({ kind: 'output', text: planningOutput });
    await make().extract(planningRequest);
    const prompt = buildExtractionPrompt(planningRequest);
    const schema = getExtractionJsonSchema(true);
    const body = lastRequest().body;
    if (api === 'responses') {
      expect(body).toEqual({
        model: MODEL,
        instructions: prompt.system,
        input: [{ role: 'user', content: prompt.user }],
        text: {
          format: { type: 'json_schema', name: EXTRACTION_SCHEMA_NAME, schema, strict: true },
        },
        max_output_tokens: 4096,
        temperature: 0,
        store: false,
      });
    } else {
      expect(body).toEqual({
        model: MODEL,
        messages: [
          { role: 'system', content: prompt.system },
          { role: 'user', content: prompt.user },
        ],
        response_format: {
          type: 'json_schema',
          json_schema: { name: EXTRACTION_SCHEMA_NAME, schema, strict: true },
        },
        max_tokens: 4096,
        temperature: 0,
      });
    }
  });

  it('returns the draft, mapping completed step numbers to steps, and the reported token usage', async () => {
    server.enqueue({
      kind: 'output',
      text: planningOutput,
      usage: { inputTokens: 812, outputTokens: 64 },
    });
    const result = await make().extract(planningRequest);
    expect(result).toEqual({
      draft: {
        summary: 'The user designs a todo REST API and chose PATCH for partial updates.',
        goal: 'Design a REST API for a todo app',
        plan: ['Define resource endpoints', 'Choose HTTP methods'],
        progress: ['Define resource endpoints', 'Choose HTTP methods'],
      },
      usage: { inputTokens: 812, outputTokens: 64 },
    });
  });

  it('uses the summary-only schema outside planning mode', async () => {
    server.enqueue({ kind: 'output', text: '{"summary":"The user plans a trip to Lisbon."}' });
    const result = await make().extract(summaryRequest);
    expect(result.draft).toEqual({ summary: 'The user plans a trip to Lisbon.' });
    expect(lastRequest().schema).toEqual(getExtractionJsonSchema(false));
    expect(lastRequest().user).toContain('(none: this is a new session)');
  });

  it('returns no usage when the server reports none', async () => {
    const text = '{"summary":"A summary."}';
    const body =
      api === 'responses'
        ? {
            id: 'resp_local',
            object: 'response',
            created_at: 1,
            status: 'completed',
            model: MODEL,
            output: [
              {
                id: 'msg_local',
                type: 'message',
                status: 'completed',
                role: 'assistant',
                content: [{ type: 'output_text', text, annotations: [] }],
              },
            ],
          }
        : {
            id: 'chatcmpl-local',
            object: 'chat.completion',
            created: 1,
            model: MODEL,
            choices: [
              { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' },
            ],
          };
    server.enqueue({ kind: 'raw_json', body });
    const result = await make().extract(summaryRequest);
    expect(result).toEqual({ draft: { summary: 'A summary.' } });
  });

  it('merges the extractor instructions with the request instructions in the system prompt', async () => {
    server.enqueue({ kind: 'output', text: planningOutput });
    await make({ instructions: 'EXTRACTOR-RULE: keep ticket ids.' }).extract({
      ...planningRequest,
      instructions: 'REQUEST-RULE: keep prices.',
    });
    const expected = buildExtractionPrompt({
      ...planningRequest,
      instructions: 'EXTRACTOR-RULE: keep ticket ids.\n\nREQUEST-RULE: keep prices.',
    });
    const request = lastRequest();
    expect(request.system).toBe(expected.system);
    expect(request.system.indexOf('EXTRACTOR-RULE')).toBeLessThan(
      request.system.indexOf('REQUEST-RULE'),
    );
  });

  it('in json_object mode asks for JSON mode and describes the schema in the prompt', async () => {
    server.enqueue({ kind: 'output', text: planningOutput });
    const result = await make({ structuredOutput: 'json_object' }).extract(planningRequest);
    expect(result.draft.progress).toEqual(['Define resource endpoints', 'Choose HTTP methods']);
    const request = lastRequest();
    expect(request.format).toEqual({ type: 'json_object' });
    expect(request.system).toContain(buildExtractionPrompt(planningRequest).system);
    expect(request.system).toContain(JSON.stringify(getExtractionJsonSchema(true)));
    expect(request.user).toBe(buildExtractionPrompt(planningRequest).user);
  });

  it('falls back to JSON mode once when the server rejects json_schema, and remembers it', async () => {
    const model = make();
    expect(model.outputFormat).toBe('json_schema');
    server.enqueue(
      {
        kind: 'http_error',
        status: 400,
        message: "Invalid parameter: 'response_format' of type 'json_schema' is not supported.",
        param: 'response_format',
      },
      { kind: 'output', text: planningOutput },
      { kind: 'output', text: planningOutput },
    );
    const first = await model.extract(planningRequest);
    expect(first.draft.summary).toContain('PATCH');
    expect(model.outputFormat).toBe('json_object');
    await model.extract(planningRequest);

    const formats = server.requests().map((request) => request.format?.type);
    expect(formats).toEqual(['json_schema', 'json_object', 'json_object']);
    expect(server.requests()[1]?.system).toContain(JSON.stringify(getExtractionJsonSchema(true)));
  });

  it('does not fall back when json_schema was asked for explicitly', async () => {
    server.enqueue({
      kind: 'http_error',
      status: 400,
      message: 'json_schema response format is not supported by this server',
    });
    const model = make({ structuredOutput: 'json_schema' });
    const error = await failure(model.extract(planningRequest));
    expect(error.reason).toBe('bad_request');
    expect(error.status).toBe(400);
    expect(server.requests()).toHaveLength(1);
    expect(model.outputFormat).toBe('json_schema');
  });

  it('does not fall back on a 400 that is not about structured output', async () => {
    server.enqueue({ kind: 'http_error', status: 400 });
    const model = make();
    const error = await failure(model.extract(planningRequest));
    expect(error.reason).toBe('bad_request');
    expect(error.cause).toBeInstanceOf(BadRequestError);
    expect(server.requests()).toHaveLength(1);
    expect(model.outputFormat).toBe('json_schema');
  });

  it('turns a refusal into a non-retryable refusal error that quotes the model', async () => {
    server.enqueue({ kind: 'refusal', text: 'I cannot help with summarising this conversation.' });
    const error = await failure(make().extract(planningRequest));
    expect(error.reason).toBe('refusal');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('I cannot help with summarising this conversation.');
  });

  it('turns output cut off at the token limit into a truncated error', async () => {
    server.enqueue({ kind: 'truncated', reason: 'max_output_tokens' });
    const error = await failure(make({ maxOutputTokens: 64 }).extract(planningRequest));
    expect(error.reason).toBe('truncated');
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/maxOutputTokens/);
    const body = lastRequest().body as Record<string, unknown>;
    expect(body[api === 'responses' ? 'max_output_tokens' : 'max_tokens']).toBe(64);
  });

  it('turns output stopped by the content filter into a truncated error', async () => {
    server.enqueue({ kind: 'truncated', reason: 'content_filter', text: '{"summary": "' });
    const error = await failure(make().extract(planningRequest));
    expect(error.reason).toBe('truncated');
    expect(error.message).toMatch(/content filter/);
  });

  it.each([
    ['empty output', { kind: 'empty' as const }, 'empty'],
    [
      'text that is not JSON',
      { kind: 'output' as const, text: 'Sure! Here is the summary.' },
      'invalid_json',
    ],
    [
      'JSON without the required fields',
      { kind: 'output' as const, text: '{"summary":"x"}' },
      'schema_mismatch',
    ],
    [
      'JSON with extra fields',
      {
        kind: 'output' as const,
        text: '{"summary":"x","goal":null,"plan":null,"completed_steps":null,"mood":"happy"}',
      },
      'schema_mismatch',
    ],
  ])('turns %s into a typed error', async (_label, scenario, reason) => {
    server.enqueue(scenario);
    const error = await failure(make().extract(planningRequest));
    expect(error.reason).toBe(reason);
    expect(error.retryable).toBe(true);
  });

  it.each([
    [401, 'authentication', AuthenticationError, false],
    [403, 'authentication', PermissionDeniedError, false],
    [400, 'bad_request', BadRequestError, false],
    [404, 'bad_request', NotFoundError, false],
    [422, 'bad_request', UnprocessableEntityError, false],
    [500, 'server_error', InternalServerError, true],
    [503, 'server_error', InternalServerError, true],
  ] as const)(
    'maps HTTP %i to %s, keeping the SDK error and the status',
    async (status, reason, errorClass, retryable) => {
      server.enqueue({ kind: 'http_error', status });
      const error = await failure(make().extract(planningRequest));
      expect(error.reason).toBe(reason);
      expect(error.status).toBe(status);
      expect(error.retryable).toBe(retryable);
      expect(error.cause).toBeInstanceOf(errorClass);
      expect(server.requests()).toHaveLength(1);
    },
  );

  it('maps 429 to rate_limit with retry-after in seconds', async () => {
    server.enqueue({ kind: 'http_error', status: 429, retryAfterSeconds: 7 });
    const error = await failure(make().extract(planningRequest));
    expect(error.reason).toBe('rate_limit');
    expect(error.status).toBe(429);
    expect(error.retryable).toBe(true);
    expect(error.retryAfterMs).toBe(7000);
    expect(error.cause).toBeInstanceOf(RateLimitError);
  });
});

describe('rate limit details', () => {
  it('reads retry-after-ms', async () => {
    server.enqueue({ kind: 'http_error', status: 429, headers: { 'retry-after-ms': '1500' } });
    const error = await failure(extractor().extract(planningRequest));
    expect(error.retryAfterMs).toBe(1500);
  });

  it('reads retry-after given as an HTTP date', async () => {
    const at = new Date(Date.now() + 30_000).toUTCString();
    server.enqueue({ kind: 'http_error', status: 429, headers: { 'retry-after': at } });
    const error = await failure(extractor().extract(planningRequest));
    expect(error.retryAfterMs).toBeGreaterThan(25_000);
    expect(error.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('leaves retryAfterMs undefined without a header', async () => {
    server.enqueue({ kind: 'http_error', status: 429 });
    const error = await failure(extractor().extract(planningRequest));
    expect(error.reason).toBe('rate_limit');
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('marks an exhausted quota as not retryable', async () => {
    server.enqueue({
      kind: 'http_error',
      status: 429,
      type: 'insufficient_quota',
      code: 'insufficient_quota',
      message: 'You exceeded your current quota, please check your plan and billing details.',
    });
    const error = await failure(extractor().extract(planningRequest));
    expect(error.reason).toBe('rate_limit');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/billing/);
  });
});

describe('Responses API response status', () => {
  it('maps status "failed" with a server_error code to server_error', async () => {
    server.enqueue({ kind: 'failed', code: 'server_error', message: 'Something went wrong.' });
    const error = await failure(extractor().extract(planningRequest));
    expect(error.reason).toBe('server_error');
    expect(error.message).toContain('Something went wrong.');
  });

  it('maps status "failed" with rate_limit_exceeded to rate_limit', async () => {
    server.enqueue({ kind: 'failed', code: 'rate_limit_exceeded', message: 'Slow down.' });
    const error = await failure(extractor().extract(planningRequest));
    expect(error.reason).toBe('rate_limit');
  });

  it('treats a reply without message items as empty', async () => {
    server.enqueue({
      kind: 'raw_json',
      body: {
        id: 'resp_x',
        object: 'response',
        created_at: 1,
        status: 'completed',
        model: MODEL,
        output: [],
      },
    });
    const error = await failure(extractor().extract(planningRequest));
    expect(error.reason).toBe('empty');
  });
});

describe('Chat Completions reply shapes', () => {
  it('treats a reply without choices as empty', async () => {
    server.enqueue({
      kind: 'raw_json',
      body: { id: 'chatcmpl-x', object: 'chat.completion', created: 1, model: MODEL, choices: [] },
    });
    const error = await failure(extractor({ api: 'chat' }).extract(planningRequest));
    expect(error.reason).toBe('empty');
  });

  it('accepts a JSON object wrapped in a code fence (some local servers add one)', async () => {
    server.enqueue({ kind: 'output', text: '```json\n{"summary":"Fenced."}\n```' });
    const result = await extractor({ api: 'chat', structuredOutput: 'json_object' }).extract(
      summaryRequest,
    );
    expect(result.draft).toEqual({ summary: 'Fenced.' });
  });
});

describe('network, timeout and abort', () => {
  it('maps a dropped connection to network', async () => {
    server.enqueue({ kind: 'drop_connection' });
    const error = await failure(extractor().extract(planningRequest));
    expect(error.reason).toBe('network');
    expect(error.retryable).toBe(true);
    expect(error.cause).toBeInstanceOf(APIConnectionError);
  });

  it('maps an unreachable server to network and says what to check', async () => {
    const other = await startOpenAITestServer();
    const baseURL = other.baseURL;
    await other.close();
    const error = await failure(extractor({ baseURL }).extract(planningRequest));
    expect(error.reason).toBe('network');
    expect(error.message).toMatch(/baseURL/);
  });

  it('times out a server that never answers', async () => {
    server.enqueue({ kind: 'hang' });
    const started = Date.now();
    const error = await failure(extractor({ timeoutMs: 300 }).extract(planningRequest));
    expect(error.reason).toBe('timeout');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('300 ms');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('times out a reply whose body never finishes', async () => {
    server.enqueue({ kind: 'hang_after_headers' });
    const started = Date.now();
    const error = await failure(
      extractor({ api: 'responses', timeoutMs: 300 }).extract(planningRequest),
    );
    expect(error.reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('bounds the whole extraction, SDK retries included, by timeoutMs', async () => {
    const busy = { kind: 'http_error' as const, status: 503, headers: { 'retry-after-ms': '250' } };
    server.enqueue(busy, busy, busy, busy, { kind: 'output', text: planningOutput });
    const started = Date.now();
    const error = await failure(
      extractor({ timeoutMs: 600, maxRetries: 4 }).extract(planningRequest),
    );
    expect(error.reason).toBe('timeout');
    // Unbounded, the four 250 ms retry waits alone would pass 1 s and then succeed.
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(server.requests().length).toBeLessThan(5);
  });

  it('fails with aborted, without a request, when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('user navigated away'));
    const error = await failure(
      extractor().extract(planningRequest, { signal: controller.signal }),
    );
    expect(error.reason).toBe('aborted');
    expect(error.retryable).toBe(false);
    expect(server.requests()).toHaveLength(0);
  });

  it('fails with aborted (not timeout) when the caller aborts during the request', async () => {
    server.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const pending = extractor({ timeoutMs: 10_000 }).extract(planningRequest, {
      signal: controller.signal,
    });
    await vi.waitFor(() => expect(server.requests()).toHaveLength(1));
    const started = Date.now();
    controller.abort();
    const error = await failure(pending);
    expect(error.reason).toBe('aborted');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('fails with aborted when the caller aborts while the body is streaming in', async () => {
    server.enqueue({ kind: 'hang_after_headers' });
    const controller = new AbortController();
    const pending = extractor({ timeoutMs: 10_000 }).extract(planningRequest, {
      signal: controller.signal,
    });
    await vi.waitFor(() => expect(server.requests()).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    const error = await failure(pending);
    expect(error.reason).toBe('aborted');
  });
});

describe('retries', () => {
  it('makes no SDK retry by default with a client it creates', async () => {
    server.enqueue({ kind: 'http_error', status: 503, headers: { 'retry-after-ms': '0' } });
    const error = await failure(extractor().extract(planningRequest));
    expect(error.reason).toBe('server_error');
    expect(server.requests()).toHaveLength(1);
  });

  it('retries through the SDK when maxRetries is set', async () => {
    server.enqueue(
      { kind: 'http_error', status: 503, headers: { 'retry-after-ms': '0' } },
      { kind: 'http_error', status: 429, headers: { 'retry-after-ms': '0' } },
      { kind: 'output', text: planningOutput },
    );
    const result = await extractor({ maxRetries: 2 }).extract(planningRequest);
    expect(result.draft.summary).toContain('PATCH');
    expect(server.requests()).toHaveLength(3);
  });
});

describe('injected client', () => {
  it('uses the client as configured (base URL, headers) and leaves it usable', async () => {
    const client = new OpenAI({
      apiKey: 'sk-injected',
      baseURL: server.baseURL,
      maxRetries: 0,
      defaultHeaders: { 'x-app-name': 'ctx-tests' },
    });
    server.enqueue({ kind: 'output', text: planningOutput });
    const model = createOpenAIExtractor({ client, model: MODEL });
    await model.extract(planningRequest);
    expect(lastRequest().headers.authorization).toBe('Bearer sk-injected');
    expect(lastRequest().headers['x-app-name']).toBe('ctx-tests');

    server.enqueue({ kind: 'output', text: '{"summary":"direct"}' });
    const direct = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(direct.choices[0]?.message.content).toBe('{"summary":"direct"}');
  });

  it('overrides the client retries per request when maxRetries is given', async () => {
    const client = new OpenAI({ apiKey: 'sk-injected', baseURL: server.baseURL, maxRetries: 0 });
    server.enqueue(
      { kind: 'http_error', status: 500, headers: { 'retry-after-ms': '0' } },
      { kind: 'output', text: planningOutput },
    );
    await createOpenAIExtractor({ client, model: MODEL, maxRetries: 1 }).extract(planningRequest);
    expect(server.requests()).toHaveLength(2);
  });
});

describe('model-dependent parameters', () => {
  it('omits temperature and uses max_completion_tokens for OpenAI reasoning models', async () => {
    server.enqueue(
      { kind: 'output', text: planningOutput },
      { kind: 'output', text: planningOutput },
    );
    await extractor({ model: 'gpt-5-nano', reasoningEffort: 'minimal' }).extract(planningRequest);
    const responses = bodyOf(0);
    expect(responses).not.toHaveProperty('temperature');
    expect(responses.reasoning).toEqual({ effort: 'minimal' });

    await extractor({ model: 'o4-mini', api: 'chat', reasoningEffort: 'low' }).extract(
      planningRequest,
    );
    const chat = bodyOf(1);
    expect(chat).not.toHaveProperty('temperature');
    expect(chat).not.toHaveProperty('max_tokens');
    expect(chat.max_completion_tokens).toBe(4096);
    expect(chat.reasoning_effort).toBe('low');
  });

  it('sends a given temperature, and none with temperature: null', async () => {
    server.enqueue(
      { kind: 'output', text: planningOutput },
      { kind: 'output', text: planningOutput },
    );
    await extractor({ temperature: 0.4 }).extract(planningRequest);
    await extractor({ temperature: null, api: 'chat' }).extract(planningRequest);
    expect(bodyOf(0).temperature).toBe(0.4);
    expect(bodyOf(1)).not.toHaveProperty('temperature');
  });
});

describe('options validation', () => {
  function configError(run: () => unknown): ValidationError {
    try {
      run();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).code).toBe('INVALID_CONFIG');
      return error as ValidationError;
    }
    throw new Error('expected INVALID_CONFIG');
  }

  it('rejects a missing model', () => {
    const error = configError(() =>
      createOpenAIExtractor({ apiKey: 'k', baseURL: server.baseURL } as never),
    );
    expect(error.issues.map((issue) => issue.path)).toEqual(['model']);
    expect(error.message).toMatch(/model/);
  });

  it('lists every invalid option at once', () => {
    const error = configError(() =>
      createOpenAIExtractor({
        apiKey: '',
        baseURL: 'not a url',
        model: MODEL,
        api: 'completions',
        structuredOutput: 'yaml',
        timeoutMs: 0,
        maxOutputTokens: 1.5,
        temperature: 3,
        maxRetries: -1,
        instructions: 42,
        reasoningEffort: '',
      } as never),
    );
    expect(error.issues.map((issue) => issue.path).sort()).toEqual(
      [
        'apiKey',
        'baseURL',
        'api',
        'structuredOutput',
        'timeoutMs',
        'maxOutputTokens',
        'temperature',
        'maxRetries',
        'instructions',
        'reasoningEffort',
      ].sort(),
    );
  });

  it('rejects a client together with apiKey or baseURL, and a client that is not an OpenAI client', () => {
    const client = new OpenAI({ apiKey: 'k', baseURL: server.baseURL });
    expect(
      configError(() => createOpenAIExtractor({ client, apiKey: 'k', model: MODEL } as never))
        .message,
    ).toMatch(/either client or apiKey/);
    expect(
      configError(() => createOpenAIExtractor({ client: {} as OpenAI, model: MODEL })).issues[0]
        ?.path,
    ).toBe('client');
  });

  it('explains how to pass a key when none is given and OPENAI_API_KEY is unset', () => {
    vi.stubEnv('OPENAI_API_KEY', '');
    vi.stubEnv('OPENAI_ADMIN_KEY', '');
    try {
      const error = configError(() =>
        createOpenAIExtractor({ baseURL: server.baseURL, model: 'qwen2.5:7b' }),
      );
      expect(error.message).toMatch(/apiKey/);
      expect(error.message).toMatch(/OPENAI_API_KEY/);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('rejects a non-object', () => {
    configError(() => createOpenAIExtractor(undefined as never));
  });
});
