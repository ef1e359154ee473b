import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteRepository } from '@ctx/store-sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import type { SessionContextJson } from '../src/app.js';
import { hashToken } from '../src/auth.js';
import {
  chatCompletion,
  completeStepTurn,
  PLAN_STEPS,
  PLAN_TURN,
  postTurn,
  type ServerProcess,
  spawnServer,
  startFakeOpenAI,
} from './helpers.js';

const directory = mkdtempSync(join(tmpdir(), 'ctx-server-'));
const running: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((server) => server.stop('SIGKILL')));
  rmSync(directory, { recursive: true, force: true });
});

async function start(env: Record<string, string>) {
  const server = await spawnServer(env);
  running.push(server);
  return server;
}

describe('node dist/main.js', () => {
  it('serves the API from the environment and exits 0 on SIGTERM with the data on disk', async () => {
    const file = join(directory, 'nested', 'basic.db');
    const server = await start({
      CTX_STORE_URL: `sqlite:${file}`,
      CTX_MODEL: 'extractive',
      CTX_PLANNING: '1',
    });
    expect(server.output()).toContain('model: extractive');
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect((await postTurn(server.url, 'p1', 'alice', PLAN_TURN)).status).toBe(200);
    expect((await postTurn(server.url, 'p1', 'alice', completeStepTurn(1))).status).toBe(200);
    const read = await fetch(`${server.url}/v1/sessions/p1/context`);
    const { context } = (await read.json()) as { context: SessionContextJson };
    expect(context).toMatchObject({ version: 2, plan: PLAN_STEPS, progress: [PLAN_STEPS[0]] });

    expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(server.output()).toContain('stopped');
    const repository = createSqliteRepository({ filename: file });
    try {
      expect(await repository.get('p1')).toMatchObject({ version: 2, userId: 'alice' });
    } finally {
      await repository.close();
    }
  });

  it('flushes a queued (?wait=false) update on SIGTERM before exiting', async () => {
    const file = join(directory, 'flush.db');
    let answeredAt = 0;
    const model = await startFakeOpenAI(() => {
      setTimeout(() => {
        answeredAt = Date.now();
      }, 1500);
      return {
        delayMs: 1500,
        body: chatCompletion({ summary: 'The user asked how to name REST endpoints.' }),
      };
    });
    try {
      const server = await start({
        CTX_STORE_URL: `sqlite:${file}`,
        CTX_MODEL: 'openai:test-model',
        OPENAI_BASE_URL: model.baseURL,
        OPENAI_API_KEY: 'test-key',
      });
      const response = await postTurn(
        server.url,
        'queued',
        'alice',
        [{ role: 'user', content: 'How should I name REST endpoints?' }],
        { wait: false },
      );
      expect(response.status).toBe(202);
      const signalledAt = Date.now();
      const exit = await server.stop('SIGTERM');
      const exitedAt = Date.now();
      expect(exit).toEqual({ code: 0, signal: null });
      expect(model.requests).toHaveLength(1);
      expect(answeredAt).toBeGreaterThan(signalledAt);
      expect(exitedAt).toBeGreaterThanOrEqual(answeredAt);

      const repository = createSqliteRepository({ filename: file });
      try {
        expect(await repository.get('queued')).toMatchObject({
          version: 1,
          userId: 'alice',
          summary: 'The user asked how to name REST endpoints.',
        });
      } finally {
        await repository.close();
      }
    } finally {
      await model.close();
    }
  });

  it('exits 1 when the shutdown takes longer than CTX_SHUTDOWN_TIMEOUT_MS', async () => {
    const model = await startFakeOpenAI(() => ({
      delayMs: 10_000,
      body: chatCompletion({ summary: 'never in time' }),
    }));
    try {
      const server = await start({
        CTX_STORE_URL: `sqlite:${join(directory, 'timeout.db')}`,
        CTX_MODEL: 'openai:test-model',
        OPENAI_BASE_URL: model.baseURL,
        OPENAI_API_KEY: 'test-key',
        CTX_SHUTDOWN_TIMEOUT_MS: '500',
      });
      const response = await postTurn(
        server.url,
        'stuck',
        'alice',
        [{ role: 'user', content: 'Summarise our API design.' }],
        { wait: false },
      );
      expect(response.status).toBe(202);
      const exit = await server.stop('SIGTERM');
      expect(exit.code).toBe(1);
      expect(server.output()).toContain('shutdown took longer than 500 ms');
    } finally {
      await model.close();
    }
  });

  it('starts while the storage is down and reports it on /readyz (503)', async () => {
    const server = await start({ CTX_STORE_URL: 'redis://127.0.0.1:1', CTX_MODEL: 'extractive' });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const response = await fetch(`${server.url}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      status: 'unavailable',
      error: { code: 'STORAGE_UNAVAILABLE' },
    });
    expect((await server.stop('SIGTERM')).code).toBe(0);
  });

  it('requires a bearer token from CTX_AUTH_FILE (stored as a hash), and logs refusals as audit lines', async () => {
    const token = randomBytes(24).toString('hex');
    const authFile = join(directory, 'tokens.json');
    writeFileSync(
      authFile,
      JSON.stringify({ tokens: [{ sha256: hashToken(token), role: 'user', userId: 'alice' }] }),
    );
    const server = await start({
      CTX_STORE_URL: `sqlite:${join(directory, 'auth.db')}`,
      CTX_MODEL: 'extractive',
      CTX_AUTH_FILE: authFile,
    });
    expect(server.output()).toContain('auth: 1 token(s) (1 user, 0 service, 0 operator)');
    const anonymous = await postTurn(server.url, 'guarded', 'alice', PLAN_TURN);
    expect(anonymous.status).toBe(401);
    const requestId = anonymous.headers.get('x-request-id');
    const authorized = await fetch(`${server.url}/v1/sessions/guarded/turns`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ messages: PLAN_TURN }),
    });
    expect(authorized.status).toBe(200);
    const audit = server
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(audit).toEqual([
      expect.objectContaining({
        type: 'audit',
        event: 'request.refused',
        status: 401,
        code: 'UNAUTHENTICATED',
        requestId,
        path: '/v1/sessions/guarded/turns',
        principal: null,
        client: '127.0.0.1',
      }),
    ]);
    expect(server.output()).not.toContain(token);
    expect((await server.stop('SIGTERM')).code).toBe(0);
  });

  it('reloads CTX_AUTH_FILE on SIGHUP: removed tokens and their inspector sign-ins end, a bad file keeps the tokens', async () => {
    const alice = randomBytes(24).toString('hex');
    const aliceNew = randomBytes(24).toString('hex');
    const service = randomBytes(24).toString('hex');
    const operator = randomBytes(24).toString('hex');
    const operatorNew = randomBytes(24).toString('hex');
    const authFile = join(directory, 'rotated-tokens.json');
    const writeTokens = (tokens: unknown[] | string) =>
      writeFileSync(authFile, typeof tokens === 'string' ? tokens : JSON.stringify({ tokens }));
    writeTokens([
      { token: alice, role: 'user', userId: 'alice' },
      { token: service, role: 'service', name: 'chat-backend' },
      { sha256: hashToken(operator), role: 'operator', name: 'ops' },
    ]);
    const server = await start({
      CTX_STORE_URL: `sqlite:${join(directory, 'reload.db')}`,
      CTX_MODEL: 'extractive',
      CTX_AUTH_FILE: authFile,
    });
    const list = (headers: Record<string, string>) =>
      fetch(`${server.url}/v1/sessions`, { headers }).then((response) => response.status);
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const signIn = await fetch(`${server.url}/inspector/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url },
      body: new URLSearchParams({ token: operator }).toString(),
    });
    expect(signIn.status).toBe(303);
    const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0] as string;
    expect(await list(bearer(alice))).toBe(200);
    expect(await list({ cookie })).toBe(200);

    // Rotate: alice and the operator get new tokens (the operator's under the same name).
    writeTokens([
      { sha256: hashToken(aliceNew), role: 'user', userId: 'alice' },
      { token: service, role: 'service', name: 'chat-backend' },
      { sha256: hashToken(operatorNew), role: 'operator', name: 'ops' },
    ]);
    server.child.kill('SIGHUP');
    await expect
      .poll(() => server.output())
      .toContain(
        'SIGHUP: auth file reloaded: 3 token(s) (1 user, 1 service, 1 operator); 2 added, 2 removed',
      );
    expect(await list(bearer(alice))).toBe(401);
    expect(await list(bearer(aliceNew))).toBe(200);
    expect(await list({ ...bearer(service), 'x-ctx-user': 'alice' })).toBe(200);
    expect(await list({ cookie })).toBe(401);
    const page = await fetch(`${server.url}/`, { headers: { cookie } });
    expect(await page.text()).toContain('action="inspector/sign-in"');

    // Bad files (a duplicate token, then broken JSON) change nothing and are named in one line.
    const refusals = () => server.output().match(/SIGHUP: auth file not reloaded/g)?.length ?? 0;
    writeTokens([
      { token: aliceNew, role: 'user', userId: 'alice' },
      { sha256: hashToken(aliceNew), role: 'service' },
    ]);
    server.child.kill('SIGHUP');
    await expect.poll(refusals).toBe(1);
    writeTokens(`{"tokens": [{"token": "${operator}" "role": "operator"}]}`);
    server.child.kill('SIGHUP');
    await expect.poll(refusals).toBe(2);
    const lines = server
      .output()
      .split('\n')
      .filter((line) => line.includes('SIGHUP: auth file not reloaded'));
    expect(lines).toEqual([
      expect.stringMatching(
        /^\[ctx-server\] SIGHUP: auth file not reloaded, the previous 3 token\(s\) \(1 user, 1 service, 1 operator\) stay in force: INVALID_CONFIG: Invalid auth file CTX_AUTH_FILE=\S+: tokens\.1: the same token as tokens\.0$/,
      ),
      expect.stringMatching(/: \(root\): not valid JSON \(at line 1, column \d+\)$/),
    ]);
    expect(await list(bearer(aliceNew))).toBe(200);
    expect(await list(bearer(alice))).toBe(401);
    for (const secret of [alice, aliceNew, service, operator, operatorNew]) {
      expect(server.output()).not.toContain(secret);
      expect(server.output()).not.toContain(hashToken(secret));
    }
    expect((await server.stop('SIGTERM')).code).toBe(0);
  });

  it('refuses a non-loopback HOST without authentication, and a broken auth file, at start', async () => {
    await expect(
      spawnServer({ HOST: '0.0.0.0', CTX_STORE_URL: 'memory:', CTX_MODEL: 'extractive' }),
    ).rejects.toThrow(
      /exited with code 1[\s\S]*INVALID_CONFIG[\s\S]*HOST=0\.0\.0\.0 is reachable[\s\S]*CTX_AUTH=none/,
    );
    const broken = join(directory, 'broken-tokens.json');
    writeFileSync(broken, JSON.stringify({ tokens: [{ token: 't', role: 'user' }] }));
    await expect(
      spawnServer({ CTX_AUTH_FILE: broken, CTX_STORE_URL: 'memory:', CTX_MODEL: 'extractive' }),
    ).rejects.toThrow(
      /exited with code 1[\s\S]*INVALID_CONFIG: Invalid auth file[\s\S]*tokens\.0\.userId: required/,
    );
    await expect(
      spawnServer({
        CTX_AUTH_FILE: join(directory, 'missing.json'),
        CTX_STORE_URL: 'memory:',
        CTX_MODEL: 'extractive',
      }),
    ).rejects.toThrow(/Cannot read the auth file/);
  });

  it('listens on a non-loopback HOST without authentication only with CTX_AUTH=none, and warns', async () => {
    const server = await start({
      HOST: '0.0.0.0',
      CTX_AUTH: 'none',
      CTX_STORE_URL: 'memory:',
      CTX_MODEL: 'extractive',
    });
    expect(server.output()).toContain('auth: none (CTX_AUTH=none)');
    await expect.poll(() => server.output()).toContain('warning: no authentication on 0.0.0.0');
    expect((await server.stop('SIGTERM')).code).toBe(0);
  });

  it('refuses to start with a clear message when the environment is invalid', async () => {
    await expect(
      spawnServer({ PORT: 'eighty', CTX_STORE_URL: 'ftp://example.com/db' }),
    ).rejects.toThrow(/exited with code 1[\s\S]*INVALID_CONFIG[\s\S]*PORT/);
    await expect(
      spawnServer({ PORT: '0', CTX_STORE_URL: 'ftp://example.com/db', CTX_MODEL: 'extractive' }),
    ).rejects.toThrow(/exited with code 1[\s\S]*Unsupported store URL/);
  });
});
