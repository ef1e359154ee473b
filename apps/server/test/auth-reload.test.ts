import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryRepository, SessionContextStore } from '@ctx/core';
import { createExtractiveExtractor } from '@ctx/model-extractive';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createServerApp } from '../src/app.js';
import { findPrincipal, hashToken } from '../src/auth.js';
import { createReloadableAuth, describeTokens } from '../src/auth-reload.js';

const token = () => randomBytes(24).toString('hex');
const ALICE = token();
const ALICE_NEW = token();
const SERVICE = token();
const OPERATOR = token();
const OPERATOR_NEW = token();
const SECOND_OPERATOR = token();

const directory = mkdtempSync(join(tmpdir(), 'ctx-auth-reload-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

type Entry = Record<string, string>;
const alice: Entry = { token: ALICE, role: 'user', userId: 'alice' };
const aliceNew: Entry = { sha256: hashToken(ALICE_NEW), role: 'user', userId: 'alice' };
const service: Entry = { token: SERVICE, role: 'service', name: 'billing' };
const operator: Entry = { sha256: hashToken(OPERATOR), role: 'operator', name: 'ops' };

let files = 0;
/** Writes a new auth file; `write(path, …)` rewrites it in place. */
function authFile(entries: Entry[]): string {
  const path = join(directory, `tokens-${files++}.json`);
  write(path, entries);
  return path;
}
function write(path: string, entries: Entry[] | string): void {
  writeFileSync(path, typeof entries === 'string' ? entries : JSON.stringify({ tokens: entries }));
}

describe('createReloadableAuth', () => {
  it('loads the file at once and refuses a bad one at start, as loadAuthFile does', () => {
    const auth = createReloadableAuth({ path: authFile([alice, service, operator]) });
    expect(describeTokens(auth.current())).toBe('3 token(s) (1 user, 1 service, 1 operator)');
    expect(findPrincipal(auth.current(), ALICE)).toMatchObject({ userId: 'alice' });
    const broken = authFile([{ token: 't', role: 'user' }]);
    expect(() => createReloadableAuth({ path: broken })).toThrow(/tokens\.0\.userId: required/);
  });

  it('swaps in a valid file as a new set and says what changed, per role', () => {
    const path = authFile([alice, service, operator]);
    const auth = createReloadableAuth({ path });
    const before = auth.current();
    write(path, [aliceNew, service, operator]);

    const result = auth.reload();
    expect(result).toMatchObject({ ok: true, added: 1, removed: 1 });
    expect(result.message).toBe(
      'auth file reloaded: 3 token(s) (1 user, 1 service, 1 operator); 1 added, 1 removed',
    );
    expect(findPrincipal(auth.current(), ALICE)).toBeUndefined();
    expect(findPrincipal(auth.current(), ALICE_NEW)).toMatchObject({ userId: 'alice' });
    expect(findPrincipal(auth.current(), SERVICE)).toMatchObject({ id: 'service:billing' });
    // The previous set is replaced, not edited: whoever read it keeps it whole.
    expect(findPrincipal(before, ALICE)).toMatchObject({ userId: 'alice' });
    expect(before.tokens).toHaveLength(3);
  });

  it.each([
    ['a missing file', null, /Cannot read the auth file/],
    ['bad JSON', `{"tokens": [{"token": "${ALICE}" "role": "user"}]}`, /not valid JSON/],
    ['a cut-off file', `{"tokens": [{"token": "${ALICE}"`, /not valid JSON/],
    ['an empty file', '', /not valid JSON \(it ends too early\)/],
    [
      'a schema error',
      JSON.stringify({ tokens: [{ token: ALICE, role: 'admin' }] }),
      /tokens\.0\.role/,
    ],
    [
      'a user token without userId',
      JSON.stringify({ tokens: [{ token: ALICE, role: 'user' }] }),
      /tokens\.0\.userId: required/,
    ],
    [
      'a duplicate token (once as a hash)',
      JSON.stringify({ tokens: [alice, { sha256: hashToken(ALICE), role: 'operator' }] }),
      /tokens\.1: the same token as tokens\.0/,
    ],
  ])(
    'keeps the previous tokens on %s, in one line without token or hash',
    (_name, text, problem) => {
      const path = authFile([alice, service, operator]);
      const auth = createReloadableAuth({ path });
      const before = auth.current();
      if (text === null) rmSync(path);
      else write(path, text);

      const result = auth.reload();
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error.code).toBe('INVALID_CONFIG');
      expect(result.message).toMatch(
        /^auth file not reloaded, the previous 3 token\(s\) \(1 user, 1 service, 1 operator\) stay in force: INVALID_CONFIG: /,
      );
      expect(result.message).toMatch(problem);
      expect(result.message).not.toContain('\n');
      for (const secret of [ALICE, hashToken(ALICE), OPERATOR, hashToken(OPERATOR)]) {
        expect(result.message).not.toContain(secret);
      }
      expect(auth.current()).toBe(before);
      expect(findPrincipal(auth.current(), ALICE)).toMatchObject({ userId: 'alice' });
    },
  );

  it('says where bad JSON breaks, by line and column', () => {
    const path = authFile([alice]);
    const auth = createReloadableAuth({ path });
    write(path, `{\n  "tokens": [\n    {"token": "${ALICE}" "role": "user"}\n  ]\n}`);
    const result = auth.reload();
    expect(result.message).toMatch(/\(root\): not valid JSON \(at line 3, column \d+\)/);
  });
});

describe('an app with reloadable tokens', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function setup(entries: Entry[], store?: SessionContextStore) {
    const path = authFile(entries);
    const auth = createReloadableAuth({ path });
    const repository = createMemoryRepository();
    const used =
      store ?? new SessionContextStore({ repository, extractor: createExtractiveExtractor() });
    const app = createServerApp({
      store: used,
      auth,
      inspectorSessions: { secret: 's'.repeat(32) },
      onAudit: () => undefined,
    });
    cleanups.push(async () => {
      await used.flush();
      await used.repository.close();
    });
    return { app, auth, path };
  }

  const list = async (app: ReturnType<typeof setup>['app'], headers: Record<string, string>) =>
    (await app.request('/v1/sessions', { headers })).status;
  const bearer = (value: string) => ({ authorization: `Bearer ${value}` });

  async function signIn(app: ReturnType<typeof setup>['app'], value: string): Promise<string> {
    const response = await app.request('http://localhost/inspector/sign-in', {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: 'http://localhost',
      },
      body: new URLSearchParams({ token: value }).toString(),
    });
    expect(response.status).toBe(303);
    return (response.headers.get('set-cookie') ?? '').split(';')[0] as string;
  }

  it('refuses a removed token and accepts a new one from the next request on', async () => {
    const { app, auth, path } = setup([alice, service]);
    expect(await list(app, bearer(ALICE))).toBe(200);
    expect(await list(app, bearer(ALICE_NEW))).toBe(401);
    write(path, [aliceNew, service]);
    expect(auth.reload().ok).toBe(true);
    expect(await list(app, bearer(ALICE))).toBe(401);
    expect(await list(app, bearer(ALICE_NEW))).toBe(200);
    expect(await list(app, { ...bearer(SERVICE), 'x-ctx-user': 'alice' })).toBe(200);
  });

  it('lets a request in flight finish as the principal it started with', async () => {
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = () => {};
    const extracting = new Promise<void>((resolve) => {
      started = resolve;
    });
    const extractive = createExtractiveExtractor();
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: {
        async extract(request, options) {
          started();
          await released;
          return extractive.extract(request, options);
        },
      },
    });
    const { app, auth, path } = setup([alice, service], store);
    const inFlight = app.request('/v1/sessions/held/turns', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(ALICE) },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Plan the database move.' }] }),
    });
    await extracting;
    write(path, [aliceNew, service]);
    expect(auth.reload().ok).toBe(true);
    release();
    expect((await inFlight).status).toBe(200);
    expect(await store.get('held')).toMatchObject({ userId: 'alice', version: 1 });
    expect(await list(app, bearer(ALICE))).toBe(401);
  });

  it('ends inspector sign-ins of a removed operator token, even when a new token keeps its name', async () => {
    const second: Entry = { token: SECOND_OPERATOR, role: 'operator', name: 'night-shift' };
    const { app, auth, path } = setup([alice, operator, second]);
    const cookie = await signIn(app, OPERATOR);
    const secondCookie = await signIn(app, SECOND_OPERATOR);
    expect(cookie).not.toContain(OPERATOR);
    expect(cookie).not.toContain(hashToken(OPERATOR));
    expect(await list(app, { cookie })).toBe(200);

    // A reload that keeps the token keeps its sign-ins, and renaming it does not end them.
    write(path, [alice, { ...operator, name: 'ops-renamed' }, second]);
    expect(auth.reload().ok).toBe(true);
    expect(await list(app, { cookie })).toBe(200);

    // Rotated: a new token under the old name does not revive the old token's cookie.
    write(path, [
      alice,
      { sha256: hashToken(OPERATOR_NEW), role: 'operator', name: 'ops' },
      second,
    ]);
    expect(auth.reload().ok).toBe(true);
    expect(await list(app, { cookie })).toBe(401);
    const page = await app.request('/', { headers: { cookie } });
    expect(await page.text()).toContain('action="inspector/sign-in"');
    expect(await list(app, { cookie: secondCookie })).toBe(200);
    expect(await list(app, { cookie: await signIn(app, OPERATOR_NEW) })).toBe(200);
    // A failed reload changes nothing either way.
    write(path, '{');
    expect(auth.reload().ok).toBe(false);
    expect(await list(app, { cookie })).toBe(401);
    expect(await list(app, { cookie: secondCookie })).toBe(200);
  });
});
