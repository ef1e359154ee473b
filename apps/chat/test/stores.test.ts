import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chatEnv, runChat } from './helpers/chat-process.js';
import { type ModelServers, startModelServers, summaryOutput } from './helpers/model-servers.js';

// The real servers of these machines; a run fails (does not skip) when one is down.
const REDIS_URL = process.env.CTX_REDIS_URL ?? 'redis://127.0.0.1:6379';
const POSTGRES_URL = process.env.CTX_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let servers: ModelServers;

beforeAll(async () => {
  servers = await startModelServers();
});
afterAll(() => servers?.close());
beforeEach(() => servers.reset());

function modelEnv() {
  return chatEnv({ OPENAI_BASE_URL: servers.baseURL, OPENAI_MODEL: 'test-model' });
}

describe.each([
  ['redis', REDIS_URL],
  ['postgres', POSTGRES_URL],
])('--store %s', (_name, storeUrl) => {
  it('stores the context there and resumes it from another process', async () => {
    const session = `chat-${randomUUID()}`;
    const user = `user-${randomUUID()}`;
    const args = ['--store', storeUrl, '--session', session, '--user', user];
    servers.replies.enqueue(
      { kind: 'output', text: 'Redis and PostgreSQL both work.' },
      { kind: 'output', text: 'We talked about stores.' },
    );
    servers.extractions.enqueue(summaryOutput(`The user compares stores (${session}).`));

    const first = await runChat(args, ['Which store should I use?'], { env: modelEnv() });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`store:   ${storeUrl}`);

    const second = await runChat(args, ['What did we talk about?', '/sessions', '/forget'], {
      env: modelEnv(),
    });
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`session ${session} (version 1, updated `);
    expect(servers.replies.requests()[1]?.system).toContain(
      `Summary: The user compares stores (${session}).`,
    );
    // The user id is random, so the listing holds exactly this session.
    expect(second.stdout).toMatch(
      new RegExp(`Sessions of user ${user} \\(most recent first\\):\\n\\* ${session}\\s+v1 `),
    );
    expect(second.stdout).toContain(`Forgot session ${session}`);

    const third = await runChat(args, ['/context'], { env: modelEnv() });
    expect(third.stdout).toContain(`session ${session} (new, no context yet)`);
    expect(third.stdout).toContain(`Session ${session}: no context yet`);
  });
});

describe('an unreachable store', () => {
  it.each([
    ['redis', 'redis://127.0.0.1:1'],
    ['postgres', 'postgres://postgres:secret@127.0.0.1:1/test'],
  ])('%s: one line on stderr, exit code 1, the password redacted', async (_name, storeUrl) => {
    const started = Date.now();
    const run = await runChat(['--store', storeUrl], ['hello'], { env: modelEnv() });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^chat: cannot (open|use) the store /);
    expect(lines[0]).not.toContain('secret');
    expect(servers.replies.requests()).toHaveLength(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
