import { randomBytes } from 'node:crypto';
import { createMemoryRepository, type Message, SessionContextStore } from '@ctx/core';
import { createExtractiveExtractor } from '@ctx/model-extractive';
import { afterEach, describe, expect, it } from 'vitest';
import { createServerApp, type ServerAppOptions } from '../src/app.js';
import type { AuditEvent } from '../src/audit.js';
import { findPrincipal, hashToken, isLoopbackHost, parseAuthFile } from '../src/auth.js';
import type { ErrorBody } from '../src/http-errors.js';
import { createRateLimiter } from '../src/rate-limit.js';

const token = () => randomBytes(24).toString('hex');
const ALICE = token();
const BOB = token();
const SERVICE = token();
const OPERATOR = token();
const AUTH = parseAuthFile(
  JSON.stringify({
    tokens: [
      { token: ALICE, role: 'user', userId: 'alice' },
      // Stored as a hash: the file never holds Bob's token.
      { sha256: hashToken(BOB), role: 'user', userId: 'bob' },
      { token: SERVICE, role: 'service', name: 'billing' },
      { sha256: hashToken(OPERATOR).toUpperCase(), role: 'operator', name: 'ops' },
    ],
  }),
);

const hello: Message[] = [
  { role: 'user', content: 'How should I name the REST endpoints of my todo API?' },
  { role: 'assistant', content: 'Use plural nouns such as /todos and /todos/{id}.' },
];

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setup(options: Partial<ServerAppOptions> = {}) {
  const repository = createMemoryRepository();
  const store = new SessionContextStore({ repository, extractor: createExtractiveExtractor() });
  const audits: AuditEvent[] = [];
  const app = createServerApp({
    store,
    auth: AUTH,
    onAudit: (event) => audits.push(event),
    ...options,
  });
  cleanups.push(async () => {
    await store.flush();
    await repository.close();
  });
  return { app, store, audits };
}

const bearer = (value: string, extra: Record<string, string> = {}) => ({
  authorization: `Bearer ${value}`,
  ...extra,
});

function postTurn(
  app: ReturnType<typeof setup>['app'],
  sessionId: string,
  headers: Record<string, string>,
) {
  return app.request(`/v1/sessions/${sessionId}/turns`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ messages: hello }),
  });
}

async function errorOf(response: Response): Promise<ErrorBody['error']> {
  return ((await response.json()) as ErrorBody).error;
}

describe('the auth file', () => {
  it('accepts tokens and SHA-256 hashes, and finds each principal', () => {
    expect(findPrincipal(AUTH, ALICE)).toEqual({
      role: 'user',
      userId: 'alice',
      id: `user:alice#${hashToken(ALICE).slice(0, 8)}`,
    });
    expect(findPrincipal(AUTH, BOB)).toMatchObject({ role: 'user', userId: 'bob' });
    expect(findPrincipal(AUTH, SERVICE)).toEqual({ role: 'service', id: 'service:billing' });
    expect(findPrincipal(AUTH, OPERATOR)).toEqual({ role: 'operator', id: 'operator:ops' });
    expect(findPrincipal(AUTH, `${ALICE}x`)).toBeUndefined();
    expect(findPrincipal(AUTH, '')).toBeUndefined();
    // The server keeps digests only.
    expect(JSON.stringify(AUTH)).not.toContain(ALICE);
  });

  it.each([
    ['not JSON', '{"tokens": [', '(root): not valid JSON'],
    ['no tokens', '{"tokens": []}', 'tokens: list at least one token'],
    [
      'an unknown field',
      '{"tokens": [{"token": "t", "role": "operator", "rol": "x"}]}',
      'tokens.0.rol',
    ],
    ['a typo in the role', '{"tokens": [{"token": "t", "role": "admin"}]}', 'tokens.0.role'],
    [
      'a user token without userId',
      '{"tokens": [{"token": "t", "role": "user"}]}',
      'tokens.0.userId: required',
    ],
    [
      'a service bound to a user',
      '{"tokens": [{"token": "t", "role": "service", "userId": "a"}]}',
      'tokens.0.userId',
    ],
    [
      'both token and sha256',
      `{"tokens": [{"token": "t", "sha256": "${hashToken('t')}", "role": "operator"}]}`,
      'exactly one',
    ],
    [
      'a short hash',
      '{"tokens": [{"sha256": "abc", "role": "operator"}]}',
      'tokens.0.sha256: must be 64 hex',
    ],
    [
      'one token twice',
      `{"tokens": [{"token": "t", "role": "operator"}, {"sha256": "${hashToken('t')}", "role": "service"}]}`,
      'tokens.1: the same token as tokens.0',
    ],
  ])('refuses %s with INVALID_CONFIG naming the entry', (_label, text, message) => {
    expect(() => parseAuthFile(text, 'CTX_AUTH_FILE=/etc/ctx/tokens.json')).toThrow(
      expect.objectContaining({
        code: 'INVALID_CONFIG',
        message: expect.stringContaining(message),
      }),
    );
  });

  it('knows which hosts are loopback', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'example.com', '127.0.0.1.nip.io']) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });
});

describe('bearer authentication', () => {
  it('answers 401 with WWW-Authenticate for no token, a wrong one and a malformed header', async () => {
    const { app, audits } = setup();
    const cases: [Record<string, string>, string][] = [
      [{}, 'Bearer realm="ctx"'],
      [bearer(token()), 'Bearer realm="ctx", error="invalid_token"'],
      [
        { authorization: `Basic ${Buffer.from(`x:${ALICE}`).toString('base64')}` },
        'error="invalid_token"',
      ],
      [{ authorization: `Bearer ${ALICE} extra` }, 'error="invalid_token"'],
    ];
    for (const [headers, challenge] of cases) {
      const response = await app.request('/v1/sessions', { headers });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain(challenge);
      expect(await errorOf(response)).toMatchObject({ code: 'UNAUTHENTICATED', retryable: false });
    }
    expect(audits.map((event) => [event.status, event.code, event.principal])).toEqual(
      cases.map(() => [401, 'UNAUTHENTICATED', null]),
    );
    // The scheme is case-insensitive.
    const lower = await app.request('/v1/sessions', {
      headers: { authorization: `bearer ${ALICE}` },
    });
    expect(lower.status).toBe(200);
  });

  it('lets probes and the OpenAPI document through without a token', async () => {
    const { app } = setup();
    expect((await app.request('/healthz')).status).toBe(200);
    expect((await app.request('/readyz')).status).toBe(200);
    expect((await app.request('/openapi.json')).status).toBe(200);
  });

  it('binds a user token to its user: the header may repeat it, never name another', async () => {
    const { app, store, audits } = setup();
    expect((await postTurn(app, 'own', bearer(ALICE))).status).toBe(200);
    expect((await postTurn(app, 'own', bearer(ALICE, { 'x-ctx-user': 'alice' }))).status).toBe(200);
    const claimed = await postTurn(app, 'own', bearer(ALICE, { 'x-ctx-user': 'bob' }));
    expect(claimed.status).toBe(403);
    expect(await errorOf(claimed)).toMatchObject({ code: 'FORBIDDEN' });
    expect(await store.get('own')).toMatchObject({ userId: 'alice', version: 2 });
    expect(audits.at(-1)).toMatchObject({
      status: 403,
      code: 'FORBIDDEN',
      principal: expect.stringMatching(/^user:alice#/),
      method: 'POST',
      path: '/v1/sessions/own/turns',
    });
  });

  it('lets a service act for the user it names, percent-encoded UTF-8 included', async () => {
    const { app, store } = setup();
    const response = await postTurn(
      app,
      'jose',
      bearer(SERVICE, { 'x-ctx-user': encodeURIComponent('José') }),
    );
    expect(response.status).toBe(200);
    expect((await store.get('jose'))?.userId).toBe('José');
    const missing = await postTurn(app, 'jose', bearer(SERVICE));
    expect(missing.status).toBe(400);
    expect((await errorOf(missing)).issues).toEqual([
      { path: 'header.x-ctx-user', message: expect.stringContaining('service token') },
    ]);
  });

  it('keeps operators read-only, and lets them read everything', async () => {
    const { app } = setup();
    await postTurn(app, 'a1', bearer(ALICE));
    const read = await app.request('/v1/sessions/a1/context', { headers: bearer(OPERATOR) });
    expect(read.status).toBe(200);
    const prompt = await app.request('/v1/sessions/a1/context?format=prompt', {
      headers: bearer(OPERATOR),
    });
    expect(await prompt.text()).toContain('<session_context>');
    for (const [method, path] of [
      ['POST', '/v1/sessions/a1/turns'],
      ['DELETE', '/v1/sessions/a1'],
    ] as const) {
      const response = await app.request(path, {
        method,
        headers: {
          ...bearer(OPERATOR, { 'x-ctx-user': 'alice' }),
          'content-type': 'application/json',
        },
        ...(method === 'POST' ? { body: JSON.stringify({ messages: hello }) } : {}),
      });
      expect(response.status).toBe(403);
      expect(await errorOf(response)).toMatchObject({ code: 'FORBIDDEN' });
    }
  });
});

describe('request ids', () => {
  it('echoes a sane x-request-id, replaces an unsafe one, and puts it in error bodies and audits', async () => {
    const { app, audits } = setup();
    const echoed = await app.request('/v1/sessions', { headers: { 'x-request-id': 'trace-42' } });
    expect(echoed.headers.get('x-request-id')).toBe('trace-42');
    expect(await errorOf(echoed)).toMatchObject({ requestId: 'trace-42' });
    expect(audits.at(-1)?.requestId).toBe('trace-42');

    const unsafe = await app.request('/healthz', {
      headers: { 'x-request-id': 'evil"\u0001<script>' },
    });
    expect(unsafe.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const generated = await app.request('/healthz');
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('rate limits', () => {
  it('answers 429 RATE_LIMITED with an integer Retry-After per principal', async () => {
    const { app, audits } = setup({ rateLimit: { perMinute: 2 } });
    for (let index = 0; index < 2; index += 1) {
      expect((await app.request('/v1/sessions', { headers: bearer(ALICE) })).status).toBe(200);
    }
    const limited = await app.request('/v1/sessions', { headers: bearer(ALICE) });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(30);
    expect(await errorOf(limited)).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    expect(audits.at(-1)).toMatchObject({
      status: 429,
      principal: expect.stringMatching(/^user:alice#/),
    });
    // Another principal has its own bucket.
    expect((await app.request('/v1/sessions', { headers: bearer(BOB) })).status).toBe(200);
  });

  it('throttles failed authentication per client too', async () => {
    const { app } = setup({ rateLimit: { perMinute: 3 } });
    const statuses = [];
    for (let index = 0; index < 4; index += 1) {
      statuses.push((await app.request('/v1/sessions', { headers: bearer(token()) })).status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  it('refills buckets over time', () => {
    let now = 0;
    const limiter = createRateLimiter({ perMinute: 60, burst: 2, now: () => now });
    expect([limiter.take('k'), limiter.take('k')].every((decision) => decision.allowed)).toBe(true);
    expect(limiter.take('k')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    now += 1000;
    expect(limiter.take('k').allowed).toBe(true);
    expect(limiter.take('other').allowed).toBe(true);
  });
});

describe('CORS', () => {
  it('sends no CORS headers by default', async () => {
    const { app } = setup();
    const response = await app.request('/v1/sessions', {
      headers: bearer(ALICE, { origin: 'https://evil.example' }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await app.request('/v1/sessions', {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows exactly the listed origins', async () => {
    const { app } = setup({ corsOrigins: ['https://app.example.com'] });
    const preflight = await app.request('/v1/sessions/s/turns', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    const allowed = await app.request('/v1/sessions', {
      headers: bearer(ALICE, { origin: 'https://app.example.com' }),
    });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const other = await app.request('/v1/sessions', {
      headers: bearer(ALICE, { origin: 'https://evil.example' }),
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('inspector sign-in', () => {
  const form = (
    value: string,
    headers: Record<string, string> = { origin: 'http://localhost' },
  ) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ token: value }).toString(),
  });

  async function signIn(app: ReturnType<typeof setup>['app'], headers?: Record<string, string>) {
    const response = await app.request(
      'http://localhost/inspector/sign-in',
      form(OPERATOR, headers),
    );
    expect(response.status).toBe(303);
    const cookie = response.headers.get('set-cookie') ?? '';
    return { response, cookie, value: cookie.split(';')[0] as string };
  }

  it('shows a sign-in form, not sessions, without a sign-in', async () => {
    const { app } = setup();
    await postTurn(app, 'secret-plans', bearer(ALICE));
    const page = await app.request('/');
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('action="inspector/sign-in"');
    expect(html).toContain('type="password"');
    expect(html).not.toContain('<script');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'none'");
    expect(page.headers.get('content-security-policy')).toContain("form-action 'self'");
    const data = await app.request('/v1/sessions');
    expect(data.status).toBe(401);
    expect(await data.text()).not.toContain('secret-plans');
  });

  it('signs an operator in with an HttpOnly, SameSite=Strict cookie that reads but never writes', async () => {
    const { app } = setup();
    await postTurn(app, 'plans', bearer(ALICE));
    const { response, cookie, value } = await signIn(app);
    expect(response.headers.get('location')).toBe('../');
    expect(cookie).toMatch(
      /^ctx_inspector=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/,
    );
    expect(cookie).not.toContain(OPERATOR);
    expect(value).not.toContain(hashToken(OPERATOR));

    const page = await app.request('/', { headers: { cookie: value } });
    expect(await page.text()).toContain('id="sessions"');
    const list = await app.request('/v1/sessions', { headers: { cookie: value } });
    expect(list.status).toBe(200);
    // The cookie is accepted on reads only: a forged cross-site post gains nothing.
    const write = await app.request('/v1/sessions/plans', {
      method: 'DELETE',
      headers: { cookie: value, 'x-ctx-user': 'alice' },
    });
    expect(write.status).toBe(401);
  });

  it('marks the cookie Secure behind a TLS proxy', async () => {
    const { app } = setup();
    const { cookie } = await signIn(app, {
      origin: 'https://ctx.example.com',
      host: 'ctx.example.com',
      'x-forwarded-proto': 'https',
    });
    expect(cookie).toMatch(/; Secure$/);
  });

  it('refuses wrong, non-operator and cross-site sign-ins, each with an audit event', async () => {
    const { app, audits } = setup();
    const wrong = await app.request('http://localhost/inspector/sign-in', form(token()));
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('That token is not valid.');
    const user = await app.request('http://localhost/inspector/sign-in', form(ALICE));
    expect(user.status).toBe(403);
    expect(user.headers.get('set-cookie')).toBeNull();
    const crossSite = await app.request(
      'http://localhost/inspector/sign-in',
      form(OPERATOR, { origin: 'https://evil.example' }),
    );
    expect(crossSite.status).toBe(403);
    expect(crossSite.headers.get('set-cookie')).toBeNull();
    const noOrigin = await app.request('http://localhost/inspector/sign-in', form(OPERATOR, {}));
    expect(noOrigin.status).toBe(403);
    // `Origin: null` (privacy settings) passes only with the browser's own Sec-Fetch-Site.
    const nullOrigin = form(OPERATOR, { origin: 'null', 'sec-fetch-site': 'cross-site' });
    expect((await app.request('http://localhost/inspector/sign-in', nullOrigin)).status).toBe(403);
    const sameSite = form(OPERATOR, { origin: 'null', 'sec-fetch-site': 'same-origin' });
    expect((await app.request('http://localhost/inspector/sign-in', sameSite)).status).toBe(303);
    expect(audits.map((event) => [event.status, event.path])).toEqual([
      [401, '/inspector/sign-in'],
      [403, '/inspector/sign-in'],
      [403, '/inspector/sign-in'],
      [403, '/inspector/sign-in'],
      [403, '/inspector/sign-in'],
    ]);
  });

  it('refuses tampered, expired and foreign cookies, and signs out only from its own page', async () => {
    const { app } = setup({ inspectorSessions: { secret: 'x'.repeat(32), ttlMs: 60_000 } });
    const { value } = await signIn(app);
    const [name, content] = value.split('=') as [string, string];
    const [expiry, id, signature] = content.split('.') as [string, string, string];
    const tampered = `${name}=${Number(expiry) + 10_000_000}.${id}.${signature}`;
    expect((await app.request('/v1/sessions', { headers: { cookie: tampered } })).status).toBe(401);

    const other = setup({ inspectorSessions: { secret: 'y'.repeat(32) } });
    expect((await other.app.request('/v1/sessions', { headers: { cookie: value } })).status).toBe(
      401,
    );
    const same = setup({ inspectorSessions: { secret: 'x'.repeat(32) } });
    expect((await same.app.request('/v1/sessions', { headers: { cookie: value } })).status).toBe(
      200,
    );

    const crossSite = await app.request('http://localhost/inspector/sign-out', {
      method: 'POST',
      headers: { cookie: value, origin: 'https://evil.example' },
    });
    expect(crossSite.status).toBe(403);
    const signOut = await app.request('http://localhost/inspector/sign-out', {
      method: 'POST',
      headers: { cookie: value, origin: 'http://localhost' },
    });
    expect(signOut.status).toBe(303);
    expect(signOut.headers.get('set-cookie')).toMatch(/^ctx_inspector=; .*Max-Age=0/);
  });

  it('ends the sessions of an operator token removed from the auth file', async () => {
    const secret = 'z'.repeat(32);
    const { app } = setup({ inspectorSessions: { secret } });
    const { value } = await signIn(app);
    const without = parseAuthFile(
      JSON.stringify({ tokens: [{ token: ALICE, role: 'user', userId: 'alice' }] }),
    );
    const revoked = setup({ auth: without, inspectorSessions: { secret } });
    expect((await revoked.app.request('/v1/sessions', { headers: { cookie: value } })).status).toBe(
      401,
    );
  });
});
