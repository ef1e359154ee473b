import { createHash } from 'node:crypto';
import { createExtractorFromEnv } from '@ctx/config';
import {
  type ContextExtractor,
  type ContextRepository,
  createMemoryRepository,
  type Message,
  renderSessionContext,
  type SessionContextConfig,
  SessionContextStore,
} from '@ctx/core';
import { createScriptedExtractor } from '@ctx/core/testing';
import { createExtractiveExtractor } from '@ctx/model-extractive';
import { createRedisRepository } from '@ctx/store-redis';
import { afterEach, describe, expect, it } from 'vitest';
import { createServerApp, type ServerAppOptions, type SessionContextJson } from '../src/app.js';
import { type ErrorBody, toHttpError } from '../src/http-errors.js';
import {
  chatCompletion,
  completeStepTurn,
  type FakeOpenAI,
  type FakeReply,
  PLAN_STEPS,
  PLAN_TURN,
  startFakeOpenAI,
} from './helpers.js';

interface Setup {
  app: ReturnType<typeof createServerApp>;
  store: SessionContextStore;
  repository: ContextRepository;
  reported: unknown[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setup(
  options: {
    repository?: ContextRepository;
    extractor?: ContextExtractor;
    config?: SessionContextConfig;
    app?: Partial<ServerAppOptions>;
  } = {},
): Setup {
  const repository = options.repository ?? createMemoryRepository();
  const store = new SessionContextStore({
    repository,
    extractor: options.extractor ?? createExtractiveExtractor(),
    config: { enablePlanning: true, ...options.config },
  });
  const reported: unknown[] = [];
  const app = createServerApp({
    store,
    onError: (error) => reported.push(error),
    ...options.app,
  });
  cleanups.push(async () => {
    await store.flush();
    await repository.close();
  });
  return { app, store, repository, reported };
}

async function fakeModel(reply: (body: unknown, index: number) => FakeReply) {
  const server = await startFakeOpenAI(reply);
  cleanups.push(() => server.close());
  const { extractor } = await createExtractorFromEnv({
    CTX_MODEL: 'openai:test-model',
    OPENAI_BASE_URL: server.baseURL,
    OPENAI_API_KEY: 'test-key',
  });
  return { server, extractor } as { server: FakeOpenAI; extractor: ContextExtractor };
}

function turn(
  app: Setup['app'],
  sessionId: string,
  messages: unknown,
  options: { user?: string | null; query?: string; contentType?: string; rawBody?: string } = {},
) {
  const headers: Record<string, string> = {
    'content-type': options.contentType ?? 'application/json',
  };
  if (options.user !== null) headers['x-ctx-user'] = options.user ?? 'alice';
  return app.request(`/v1/sessions/${encodeURIComponent(sessionId)}/turns${options.query ?? ''}`, {
    method: 'POST',
    headers,
    body: options.rawBody ?? JSON.stringify({ messages }),
  });
}

function getContext(app: Setup['app'], sessionId: string, query = '', user?: string) {
  return app.request(
    `/v1/sessions/${encodeURIComponent(sessionId)}/context${query}`,
    user ? { headers: { 'x-ctx-user': user } } : {},
  );
}

async function errorOf(response: Response): Promise<ErrorBody['error']> {
  const body = (await response.json()) as ErrorBody;
  expect(body.error.message.length).toBeGreaterThan(10);
  return body.error;
}

const hello: Message[] = [
  { role: 'user', content: 'How should I name the REST endpoints of my todo API?' },
  { role: 'assistant', content: 'Use plural nouns such as /todos and /todos/{id}.' },
];

describe('health and readiness', () => {
  it('GET /healthz answers 200 while the process runs', async () => {
    const { app } = setup();
    const response = await app.request('/healthz');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 200 when the repository answers', async () => {
    const { app } = setup();
    const response = await app.request('/readyz');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
  });

  it('GET /readyz answers 503 STORAGE_UNAVAILABLE when the storage cannot be reached', async () => {
    const repository = createRedisRepository({
      url: 'redis://127.0.0.1:1',
      connectTimeoutMs: 300,
    });
    const { app } = setup({ repository });
    const response = await app.request('/readyz');
    expect(response.status).toBe(503);
    const body = (await response.json()) as { status: string; error: { code: string } };
    expect(body).toMatchObject({ status: 'unavailable', error: { code: 'STORAGE_UNAVAILABLE' } });
  });

  it('GET /readyz answers 503 once the repository is closed, and while draining', async () => {
    let draining = false;
    const closed = setup();
    await closed.repository.close();
    expect((await closed.app.request('/readyz')).status).toBe(503);

    const { app } = setup({ app: { isDraining: () => draining } });
    expect((await app.request('/readyz')).status).toBe(200);
    draining = true;
    const response = await app.request('/readyz');
    expect(response.status).toBe(503);
    expect(response.headers.get('connection')).toBe('close');
    const refused = await turn(app, 's-drain', hello);
    expect(refused.status).toBe(503);
    expect(await errorOf(refused)).toMatchObject({ code: 'SHUTTING_DOWN', retryable: true });
  });
});

describe('POST /v1/sessions/:id/turns', () => {
  it('updates the context synchronously and returns it with ISO timestamps', async () => {
    const { app, store } = setup();
    const response = await turn(app, 'deploy', PLAN_TURN);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await response.json()) as { context: SessionContextJson; updated: boolean };
    expect(body.updated).toBe(true);
    expect(body.context).toMatchObject({
      sessionId: 'deploy',
      userId: 'alice',
      goal: 'Deploy my Python web app to production',
      plan: PLAN_STEPS,
      progress: [],
      version: 1,
    });
    expect(new Date(body.context.updatedAt).toISOString()).toBe(body.context.updatedAt);
    expect(body.context.createdAt).toBe(body.context.updatedAt);

    const second = await turn(app, 'deploy', completeStepTurn(1));
    const next = (await second.json()) as { context: SessionContextJson };
    expect(next.context.version).toBe(2);
    expect(next.context.progress).toEqual([PLAN_STEPS[0]]);
    expect((await store.get('deploy'))?.version).toBe(2);
  });

  it('skips a turn with nothing conversational, without writing', async () => {
    const { app } = setup();
    await turn(app, 'skip', hello);
    const response = await turn(app, 'skip', [{ role: 'tool', content: '{"ok":true}' }]);
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      context: SessionContextJson;
      updated: boolean;
      skipped: string;
    };
    expect(body).toMatchObject({ updated: false, skipped: 'no-conversational-content' });
    expect(body.context.version).toBe(1);
  });

  it('answers ?wait=false (202) once the turn is recorded, and folds it in the background', async () => {
    const { app, store } = setup();
    const response = await turn(app, 'queued', PLAN_TURN, { query: '?wait=false' });
    expect(response.status).toBe(202);
    const body = (await response.json()) as { queued: boolean; turnId: string };
    expect(body).toEqual({ queued: true, turnId: expect.any(String) });
    const recorded = await store.pendingTurns('queued');
    expect(recorded.length === 0 || recorded[0]?.turnId === body.turnId).toBe(true);
    await store.flush();
    expect(await store.pendingTurns('queued')).toEqual([]);
    const stored = await store.get('queued');
    expect(stored).toMatchObject({ version: 1, userId: 'alice', plan: PLAN_STEPS });
  });

  it('?wait=false keeps a 300-message turn whole: the model sees every message', async () => {
    const seen: number[] = [];
    const { app, store } = setup({
      extractor: {
        async extract(request) {
          seen.push(request.messages.length);
          return { draft: { summary: `${request.messages.length} messages` } };
        },
      },
    });
    const messages = Array.from({ length: 300 }, (_, index) => ({
      role: index % 2 === 0 ? 'user' : 'assistant',
      content: `message ${index}`,
    }));
    const response = await turn(app, 'long-turn', messages, { query: '?wait=false' });
    expect(response.status).toBe(202);
    await store.flush();
    expect(seen).toEqual([300]);
    expect((await store.get('long-turn'))?.summary).toBe('300 messages');
  });

  it('round-trips session ids with slashes, spaces and unicode through the path', async () => {
    const { app } = setup();
    const sessionId = 'team/alpha session #1 — ünïcode ✓';
    const response = await turn(app, sessionId, hello);
    expect(response.status).toBe(200);
    const read = await getContext(app, sessionId);
    expect(read.status).toBe(200);
    expect(((await read.json()) as { context: SessionContextJson }).context.sessionId).toBe(
      sessionId,
    );
  });

  it('answers 400 naming every bad field at once', async () => {
    const { app, store } = setup();
    const response = await turn(
      app,
      'x'.repeat(257),
      [{ role: 'robot', content: 'hi' }, { role: 'user' }],
      { user: null, query: '?wait=maybe' },
    );
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.retryable).toBe(false);
    const paths = error.issues?.map((issue) => issue.path).sort();
    expect(paths).toEqual([
      'body.messages.0.role',
      'body.messages.1.content',
      'header.x-ctx-user',
      'path.sessionId',
      'query.wait',
    ]);
    for (const path of paths ?? []) expect(error.message).toContain(path);
    expect((await store.list()).items).toEqual([]);
  });

  it.each([
    ['an empty message list', { messages: [] }, 'body.messages', 'at least one message'],
    ['a missing messages field', {}, 'body.messages', 'required'],
    ['an unknown field', { messages: hello, message: 'typo' }, 'body.message', 'unknown field'],
    ['an array body', [hello], 'body', 'JSON object'],
    [
      'a NUL character in content',
      { messages: [{ role: 'user', content: 'a\u0000b' }] },
      'body.messages.0.content',
      'U+0000',
    ],
  ])('answers 400 for %s', async (_label, body, path, message) => {
    const { app } = setup();
    const response = await turn(app, 's1', null, { rawBody: JSON.stringify(body) });
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.issues).toEqual([{ path, message: expect.stringContaining(message) }]);
  });

  it('answers 400 for a body that is not JSON, and 415 for another media type', async () => {
    const { app } = setup();
    const broken = await turn(app, 's1', null, { rawBody: '{"messages": [' });
    expect(broken.status).toBe(400);
    expect((await errorOf(broken)).issues?.[0]?.path).toBe('body');

    const plain = await turn(app, 's1', hello, { contentType: 'text/plain' });
    expect(plain.status).toBe(415);
    expect(await errorOf(plain)).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('answers 400 for a malformed x-ctx-user header', async () => {
    const { app } = setup();
    const response = await turn(app, 's1', hello, { user: 'u'.repeat(300) });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).issues?.[0]?.path).toBe('header.x-ctx-user');
  });

  it('answers 413 for a body over the limit', async () => {
    const { app } = setup({ app: { maxBodyBytes: 2048 } });
    const response = await turn(app, 's1', [{ role: 'user', content: 'x'.repeat(4096) }]);
    expect(response.status).toBe(413);
    expect(await errorOf(response)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it("answers 403 OWNERSHIP_MISMATCH for another user's session, also with ?wait=false", async () => {
    const { app, store } = setup();
    await turn(app, 'owned', hello, { user: 'alice' });
    const response = await turn(app, 'owned', hello, { user: 'mallory' });
    expect(response.status).toBe(403);
    expect(await errorOf(response)).toMatchObject({ code: 'OWNERSHIP_MISMATCH' });
    const queued = await turn(app, 'owned', hello, { user: 'mallory', query: '?wait=false' });
    expect(queued.status).toBe(403);
    await store.flush();
    expect((await store.get('owned'))?.version).toBe(1);
  });

  it('answers 409 VERSION_CONFLICT when another writer keeps winning, and keeps its write', async () => {
    const repository = createMemoryRepository();
    // Another instance writes the session while this one extracts: the compare-and-set loses.
    const extractor = createScriptedExtractor({
      fallback: async (request) => {
        const current = await repository.get('contested');
        const now = new Date();
        await repository.save(
          {
            sessionId: 'contested',
            userId: 'alice',
            summary: 'written by the other instance',
            goal: null,
            plan: null,
            progress: null,
            createdAt: current?.createdAt ?? now,
            updatedAt: now,
            version: (current?.version ?? 0) + 1,
          },
          { expectedVersion: current?.version ?? null },
        );
        return { summary: `from this instance after ${request.messages.length} messages` };
      },
    });
    const { app } = setup({ repository, extractor, config: { maxConflictRetries: 1 } });
    const response = await turn(app, 'contested', hello);
    expect(response.status).toBe(409);
    const error = await errorOf(response);
    expect(error).toMatchObject({ code: 'VERSION_CONFLICT', retryable: true, currentVersion: 2 });
    expect(error.message).toMatch(/send it again/);
    expect(await repository.get('contested')).toMatchObject({
      version: 2,
      summary: 'written by the other instance',
    });
  });

  it('answers 502 EXTRACTION_FAILED when the model fails, leaving the context unchanged', async () => {
    const { extractor } = await fakeModel((_body, index) =>
      index === 0
        ? { body: chatCompletion({ summary: 'The user names REST endpoints.' }) }
        : {
            status: 500,
            body: { error: { message: 'upstream exploded', type: 'server_error' } },
          },
    );
    const { app, store } = setup({ extractor, config: { enablePlanning: false } });
    expect((await turn(app, 'model', hello)).status).toBe(200);
    const response = await turn(app, 'model', hello);
    expect(response.status).toBe(502);
    expect(await errorOf(response)).toMatchObject({
      code: 'EXTRACTION_FAILED',
      reason: 'server_error',
      retryable: true,
    });
    expect(await store.get('model')).toMatchObject({
      version: 1,
      summary: 'The user names REST endpoints.',
    });
  });

  it('answers 503 with Retry-After when the model provider rate-limits', async () => {
    const { extractor } = await fakeModel(() => ({
      status: 429,
      headers: { 'retry-after': '7' },
      body: {
        error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' },
      },
    }));
    const { app } = setup({ extractor, config: { enablePlanning: false } });
    const response = await turn(app, 'limited', hello);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('7');
    expect(await errorOf(response)).toMatchObject({
      code: 'EXTRACTION_FAILED',
      reason: 'rate_limit',
      retryable: true,
    });
  });

  it('answers 504 when the extraction exceeds its time limit', async () => {
    const { extractor } = await fakeModel(() => ({
      delayMs: 3000,
      body: chatCompletion({ summary: 'too late' }),
    }));
    const { app, store } = setup({
      extractor,
      config: { enablePlanning: false, extractionTimeoutMs: 300 },
    });
    const response = await turn(app, 'slow', hello);
    expect(response.status).toBe(504);
    expect(await errorOf(response)).toMatchObject({ code: 'EXTRACTION_FAILED', reason: 'timeout' });
    expect(await store.get('slow')).toBeNull();
  });

  it('answers 503 STORAGE_UNAVAILABLE when the storage is down, and 503 after it is closed', async () => {
    const down = setup({
      repository: createRedisRepository({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 300 }),
    });
    const response = await turn(down.app, 's1', hello);
    expect(response.status).toBe(503);
    expect(await errorOf(response)).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      retryable: true,
    });

    const closed = setup();
    await closed.repository.close();
    const afterClose = await turn(closed.app, 's1', hello);
    expect(afterClose.status).toBe(503);
    expect(await errorOf(afterClose)).toMatchObject({ code: 'CLOSED', retryable: true });
  });
});

describe('GET /v1/sessions/:id/context', () => {
  it('returns the context as JSON to its owner and to callers without a user header', async () => {
    const { app } = setup();
    await turn(app, 'read', PLAN_TURN, { user: 'alice' });
    for (const user of ['alice', undefined]) {
      const response = await getContext(app, 'read', '', user);
      expect(response.status).toBe(200);
      expect(response.headers.get('etag')).toBe('"1"');
      const body = (await response.json()) as { context: SessionContextJson };
      expect(body.context).toMatchObject({ sessionId: 'read', plan: PLAN_STEPS, version: 1 });
    }
  });

  it('returns the rendered block as text/plain with ?format=prompt, within ?maxChars', async () => {
    const { app, store } = setup();
    await turn(app, 'prompt', PLAN_TURN);
    await turn(app, 'prompt', completeStepTurn(1));
    const response = await getContext(app, 'prompt', '?format=prompt');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toBe(renderSessionContext(await store.get('prompt')));
    expect(text).toContain('<session_context>');
    expect(text).toContain(`✓ ${PLAN_STEPS[0]}`);

    const short = await getContext(app, 'prompt', '?format=prompt&maxChars=200');
    const shortText = await short.text();
    expect(shortText.length).toBeLessThanOrEqual(200);
    expect(shortText).toMatch(/^<session_context>[\s\S]*<\/session_context>$/);
  });

  it('returns custom fields in the JSON; the prompt renders the ones the store declares', async () => {
    const { app, store, repository } = setup();
    const now = new Date();
    await repository.save(
      {
        sessionId: 'fielded',
        userId: null,
        summary: 'Deploying.',
        goal: null,
        plan: null,
        progress: null,
        createdAt: now,
        updatedAt: now,
        version: 1,
        fields: { platform: 'fly', regions: ['fra'] },
      },
      { expectedVersion: null },
    );
    const body = (await (await getContext(app, 'fielded')).json()) as {
      context: SessionContextJson;
    };
    expect(body.context.fields).toEqual({ platform: 'fly', regions: ['fra'] });
    // This store declares no fields: like store.render, the prompt leaves the stored ones out.
    const text = await (await getContext(app, 'fielded', '?format=prompt')).text();
    expect(text).toBe(await store.render('fielded'));
    expect(text).toBe('<session_context>\nSummary: Deploying.\n</session_context>');
  });

  it('answers 404 for an unknown session, 403 for another user, 400 for a bad query', async () => {
    const { app } = setup();
    await turn(app, 'mine', hello, { user: 'alice' });
    const missing = await getContext(app, 'nobody-here');
    expect(missing.status).toBe(404);
    expect(await errorOf(missing)).toMatchObject({ code: 'NOT_FOUND' });
    expect((await getContext(app, 'nobody-here', '?format=prompt')).status).toBe(404);

    const foreign = await getContext(app, 'mine', '', 'mallory');
    expect(foreign.status).toBe(403);

    const bad = await getContext(app, 'mine', '?format=xml&maxChars=5&verbose=1');
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).issues?.map((issue) => issue.path).sort()).toEqual([
      'query.format',
      'query.maxChars',
      'query.verbose',
    ]);
  });
});

describe('DELETE /v1/sessions/:id', () => {
  it('deletes the caller’s session (204), then answers 404', async () => {
    const { app, store } = setup();
    await turn(app, 'gone', hello);
    const init = { method: 'DELETE', headers: { 'x-ctx-user': 'alice' } };
    const response = await app.request('/v1/sessions/gone', init);
    expect(response.status).toBe(204);
    expect(await store.get('gone')).toBeNull();
    expect((await getContext(app, 'gone')).status).toBe(404);
    const again = await app.request('/v1/sessions/gone', init);
    expect(again.status).toBe(404);
  });

  it('refuses another user (403) and requires the user header (400)', async () => {
    const { app, store } = setup();
    await turn(app, 'kept', hello, { user: 'alice' });
    const foreign = await app.request('/v1/sessions/kept', {
      method: 'DELETE',
      headers: { 'x-ctx-user': 'mallory' },
    });
    expect(foreign.status).toBe(403);
    const anonymous = await app.request('/v1/sessions/kept', { method: 'DELETE' });
    expect(anonymous.status).toBe(400);
    expect((await errorOf(anonymous)).issues?.[0]?.path).toBe('header.x-ctx-user');
    expect((await store.get('kept'))?.version).toBe(1);
  });
});

describe('GET /v1/sessions', () => {
  async function seed(app: Setup['app']) {
    for (let index = 0; index < 5; index += 1) {
      await turn(app, `alice-${index}`, hello, { user: 'alice' });
    }
    await turn(app, 'bob-0', hello, { user: 'bob' });
    await turn(app, 'bob-1', hello, { user: 'bob' });
  }

  async function list(app: Setup['app'], query: string, user?: string) {
    const response = await app.request(
      `/v1/sessions${query}`,
      user ? { headers: { 'x-ctx-user': user } } : {},
    );
    return {
      status: response.status,
      body: (await response.json()) as { items: SessionContextJson[]; nextCursor: string | null },
    };
  }

  it('pages through one user’s sessions, most recently updated first', async () => {
    const { app } = setup();
    await seed(app);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `?user=alice&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const { status, body } = await list(app, query);
      expect(status).toBe(200);
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...body.items.map((item) => item.sessionId));
      for (const item of body.items) expect(item.userId).toBe('alice');
      cursor = body.nextCursor;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(['alice-4', 'alice-3', 'alice-2', 'alice-1', 'alice-0']);
  });

  it('lists everyone without a filter, and only the caller’s sessions with the header', async () => {
    const { app } = setup();
    await seed(app);
    const all = await list(app, '');
    expect(all.body.items.map((item) => item.sessionId).sort()).toEqual([
      'alice-0',
      'alice-1',
      'alice-2',
      'alice-3',
      'alice-4',
      'bob-0',
      'bob-1',
    ]);
    expect(all.body.nextCursor).toBeNull();
    const own = await list(app, '', 'bob');
    expect(own.body.items.map((item) => item.sessionId)).toEqual(['bob-1', 'bob-0']);
    const foreign = await app.request('/v1/sessions?user=alice', {
      headers: { 'x-ctx-user': 'bob' },
    });
    expect(foreign.status).toBe(403);
    expect(await errorOf(foreign)).toMatchObject({ code: 'OWNERSHIP_MISMATCH' });
  });

  it('answers 400 for a bad limit, cursor or parameter', async () => {
    const { app } = setup();
    const response = await app.request('/v1/sessions?limit=0&cursor=bogus&page=2');
    expect(response.status).toBe(400);
    expect((await errorOf(response)).issues?.map((issue) => issue.path).sort()).toEqual([
      'query.cursor',
      'query.limit',
      'query.page',
    ]);
    expect((await app.request('/v1/sessions?limit=1001')).status).toBe(400);
  });
});

describe('inspector and unknown routes', () => {
  it('serves the inspector page with a CSP that allows exactly its inline script', async () => {
    const { app } = setup();
    const response = await app.request('/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? '';
    const hash = createHash('sha256').update(script).digest('base64');
    expect(csp).toContain(`script-src 'sha256-${hash}'`);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet|https?:\/\//);
    expect(html).not.toContain('innerHTML');
  });

  it('leaves the inspector out when disabled, and answers 404 JSON for unknown routes', async () => {
    const { app } = setup({ app: { inspector: false } });
    const page = await app.request('/');
    expect(page.status).toBe(404);
    const response = await app.request('/v2/anything', { method: 'PUT' });
    expect(response.status).toBe(404);
    expect(await errorOf(response)).toMatchObject({ code: 'NOT_FOUND' });
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('answers 500 INTERNAL_ERROR for unexpected errors without leaking their message', () => {
    const reported: unknown[] = [];
    const bug = new TypeError('secret internals');
    const response = toHttpError(bug, (error) => reported.push(error));
    expect(response.status).toBe(500);
    expect(response.body.error.code).toBe('INTERNAL_ERROR');
    expect(response.body.error.message).not.toContain('secret');
    expect(reported).toEqual([bug]);
  });
});
