import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteRepository } from '@ctx/store-sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import type { SessionContextJson } from '../src/app.js';
import {
  chatCompletion,
  type FakeOpenAI,
  type FakeReply,
  postTurn,
  randomId,
  type ServerProcess,
  spawnServer,
  startFakeOpenAI,
} from './helpers.js';

const directory = mkdtempSync(join(tmpdir(), 'ctx-server-drain-'));
const running: ServerProcess[] = [];
const models: FakeOpenAI[] = [];
afterAll(async () => {
  await Promise.all(running.map((server) => server.stop('SIGKILL')));
  await Promise.all(models.map((model) => model.close()));
  rmSync(directory, { recursive: true, force: true });
});

async function start(env: Record<string, string>) {
  const server = await spawnServer(env);
  running.push(server);
  return server;
}

/** A local OpenAI-compatible model that answers every request with `reply`. */
async function model(reply: () => FakeReply) {
  const started = await startFakeOpenAI(reply);
  models.push(started);
  return started;
}

/** The environment of an instance whose model is `fake`. */
const withModel = (fake: FakeOpenAI) => ({
  CTX_MODEL: 'openai:test-model',
  OPENAI_BASE_URL: fake.baseURL,
  OPENAI_API_KEY: 'test-key',
});

const HANG: FakeReply = { delayMs: 600_000, body: chatCompletion({ summary: 'never' }) };
const REFUSE: FakeReply = {
  status: 400,
  body: { error: { message: 'test: bad request', type: 'invalid_request_error' } },
};

async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** GET the session's context from `server`: the snapshot, or null on 404. */
async function readContext(server: ServerProcess, sessionId: string) {
  const response = await fetch(
    `${server.url}/v1/sessions/${encodeURIComponent(sessionId)}/context`,
  );
  if (response.status === 404) return null;
  expect(response.status).toBe(200);
  return ((await response.json()) as { context: SessionContextJson }).context;
}

/** Polls `server` until the session has a context; returns it and how long it took. */
async function waitForContext(server: ServerProcess, sessionId: string, timeoutMs: number) {
  const started = Date.now();
  let context: SessionContextJson | null = null;
  await until(
    async () => {
      context = await readContext(server, sessionId);
      return context !== null;
    },
    `session "${sessionId}" on ${server.url}; output:\n${server.output()}`,
    timeoutMs,
  );
  return { context: context as unknown as SessionContextJson, elapsedMs: Date.now() - started };
}

async function pendingTurns(file: string, sessionId: string) {
  const repository = createSqliteRepository({ filename: file });
  try {
    return await repository.pendingTurns(sessionId);
  } finally {
    await repository.close();
  }
}

const turn = (text: string) => [
  { role: 'user' as const, content: text },
  { role: 'assistant' as const, content: `Noted: ${text}` },
];

describe('the drain loop (two server processes on one SQLite file)', () => {
  it('B folds the ?wait=false turns of A, killed with SIGKILL after its model failed', async () => {
    const file = join(directory, 'failed.db');
    const store = `sqlite:${file}`;
    const failing = await model(() => REFUSE);
    const a = await start({
      CTX_STORE_URL: store,
      ...withModel(failing),
      CTX_DRAIN_INTERVAL_MS: '0',
    });
    expect(a.output()).toContain('drain: off');
    const first = randomId('crashed');
    const second = randomId('crashed');
    for (const [sessionId, text] of [
      [first, 'We deploy the API to Frankfurt.'],
      [first, 'The database stays in Dublin.'],
      [second, 'The mobile release is on Monday.'],
    ] as const) {
      const response = await postTurn(a.url, sessionId, 'alice', turn(text), { wait: false });
      expect(response.status).toBe(202);
    }
    // A's background folds asked its model, failed (400 is not retried) and left the turns.
    await until(
      () => a.output().includes(first) && a.output().includes(second),
      `A's failure lines; output:\n${a.output()}`,
    );
    expect(await a.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await pendingTurns(file, first)).toHaveLength(2);
    expect(await pendingTurns(file, second)).toHaveLength(1);

    const b = await start({
      CTX_STORE_URL: store,
      CTX_MODEL: 'extractive',
      CTX_DRAIN_INTERVAL_MS: '200',
      CTX_DRAIN_OLDER_THAN_MS: '0',
    });
    expect(b.output()).toContain('drain: every 200 ms');
    const folded = await waitForContext(b, first, 5000);
    expect(folded.context).toMatchObject({ userId: 'alice', version: 1 });
    expect(folded.context.summary).toContain('Frankfurt');
    expect(folded.context.summary).toContain('Dublin');
    expect((await waitForContext(b, second, 5000)).context.summary).toContain('Monday');
    await until(() => /drain: folded \d+ turn/.test(b.output()), "B's drain log line");
    expect(await pendingTurns(file, first)).toEqual([]);
    expect(await b.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it("B leaves a session alone while A's fold holds it, and folds it once A is killed and its lease lapses", async () => {
    const file = join(directory, 'killed.db');
    const store = `sqlite:${file}`;
    const hanging = await model(() => HANG);
    const [a, b] = await Promise.all([
      start({ CTX_STORE_URL: store, ...withModel(hanging), CTX_DRAIN_INTERVAL_MS: '0' }),
      start({
        CTX_STORE_URL: store,
        CTX_MODEL: 'extractive',
        CTX_DRAIN_INTERVAL_MS: '100',
        CTX_DRAIN_OLDER_THAN_MS: '0',
      }),
    ]);
    const sessionId = randomId('mid-fold');
    const response = await postTurn(
      (a as ServerProcess).url,
      sessionId,
      'alice',
      turn('We rotate the signing keys every month.'),
      { wait: false },
    );
    expect(response.status).toBe(202);
    await until(() => hanging.requests.length > 0, "A's model call");
    // A is folding (its model hangs): B's drains skip the session while A's lease is live.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await readContext(b as ServerProcess, sessionId)).toBeNull();

    await (a as ServerProcess).stop('SIGKILL');
    // A renewed its lease (10 s) every third of it: it lapses within 10 s of the kill.
    const folded = await waitForContext(b as ServerProcess, sessionId, 15_000);
    expect(folded.context.summary).toContain('signing keys');
    expect(folded.context.version).toBe(1);
    expect(await pendingTurns(file, sessionId)).toEqual([]);
    expect(await (b as ServerProcess).stop('SIGTERM')).toEqual({ code: 0, signal: null });
  }, 30_000);

  it('stops the drain loop first on SIGTERM: a drain waiting on a hung model is aborted, exit 0 at once', async () => {
    const file = join(directory, 'shutdown.db');
    const sessionId = randomId('left');
    const repository = createSqliteRepository({ filename: file });
    try {
      await repository.recordTurn(sessionId, {
        turnId: randomId('turn'),
        userId: 'alice',
        messages: turn('We keep staging in sync with production.'),
      });
    } finally {
      await repository.close();
    }
    const hanging = await model(() => HANG);
    const server = await start({
      CTX_STORE_URL: `sqlite:${file}`,
      ...withModel(hanging),
      CTX_DRAIN_INTERVAL_MS: '100',
      CTX_DRAIN_OLDER_THAN_MS: '0',
      CTX_SHUTDOWN_TIMEOUT_MS: '10000',
    });
    await until(() => hanging.requests.length > 0, 'the drain to call the model');
    const signalled = Date.now();
    expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalled).toBeLessThan(2000);
    expect(server.output()).toContain('stopped');
    // The aborted fold is not reported as a failure, and its turn stays for another instance.
    expect(server.output()).not.toContain('failed');
    expect(await pendingTurns(file, sessionId)).toHaveLength(1);
  });

  it('CTX_DRAIN_INTERVAL_MS=0 runs no drain loop; the startup line names the default one', async () => {
    const file = join(directory, 'off.db');
    const sessionId = randomId('untouched');
    const repository = createSqliteRepository({ filename: file });
    try {
      await repository.recordTurn(sessionId, {
        turnId: randomId('turn'),
        userId: 'alice',
        messages: turn('We ship on Thursdays.'),
      });
    } finally {
      await repository.close();
    }
    const off = await start({
      CTX_STORE_URL: `sqlite:${file}`,
      CTX_MODEL: 'extractive',
      CTX_DRAIN_INTERVAL_MS: '0',
    });
    const byDefault = await start({ CTX_STORE_URL: `sqlite:${file}`, CTX_MODEL: 'extractive' });
    expect(byDefault.output()).toContain('drain: every 5000 ms, turns pending 10000 ms or more');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await readContext(off, sessionId)).toBeNull();
    expect(await pendingTurns(file, sessionId)).toHaveLength(1);
    expect((await off.stop('SIGTERM')).code).toBe(0);
    expect((await byDefault.stop('SIGTERM')).code).toBe(0);
  });
});
