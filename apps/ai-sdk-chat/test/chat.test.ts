import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteRepository } from '@ctx/store-sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type OpenAIChatServer,
  startOpenAIChatServer,
} from '../../../packages/ai-sdk/test/helpers/openai-chat-server.js';
import { BASE_PROMPT } from '../src/chat.js';
import { chatEnv, runChat } from './helpers/chat-process.js';

let server: OpenAIChatServer;
let folder: string;

beforeAll(async () => {
  server = await startOpenAIChatServer();
  folder = mkdtempSync(join(tmpdir(), 'ctx-ai-sdk-chat-'));
});
afterAll(async () => {
  await server?.close();
  if (folder) rmSync(folder, { recursive: true, force: true });
});

/** Replies from the local OpenAI wire server; context updates by the extractive extractor. */
const modelEnv = () =>
  chatEnv({ OPENAI_BASE_URL: server.baseURL, OPENAI_MODEL: 'test-model', CTX_MODEL: 'extractive' });

async function readStored(file: string, sessionId: string) {
  const repository = createSqliteRepository({ filename: file });
  try {
    return await repository.get(sessionId);
  } finally {
    await repository.close();
  }
}

describe('a conversation piped into the AI SDK chat', () => {
  it('streams the replies and puts turn 1’s context into turn 2’s system prompt', async () => {
    const file = join(folder, `${randomUUID()}.db`);
    const first = server.requests.length;
    server.reply(
      { deltas: ['Stay in ', 'Alfama, near the castle.'] },
      { deltas: ['Walk up, ', 'or take tram 28.'] },
    );
    const run = await runChat(
      ['--store', `sqlite:${file}`, '--session', 'trip', '--user', 'alice'],
      [
        'I am planning a week in Lisbon in May. Where should I stay?',
        '/context',
        'How do I get to the castle from there?',
        '/context',
      ],
      { env: modelEnv() },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      'ctx ai-sdk-chat · session trip (new, no context yet) · user alice',
    );
    expect(run.stdout).toContain('assistant: Stay in Alfama, near the castle.\n');
    expect(run.stdout).toContain('assistant: Walk up, or take tram 28.\n');
    expect(run.stdout).toMatch(/version 1 ·[\s\S]*version 2 ·/);

    const [turn1, turn2] = server.requests.slice(first);
    expect(turn1?.stream).toBe(true);
    expect(turn1?.messages[0]).toEqual({ role: 'system', content: BASE_PROMPT });
    const system = String(turn2?.messages[0]?.content);
    expect(system.startsWith(`${BASE_PROMPT}\n\n<session_context>\nSummary: `)).toBe(true);
    expect(system).toMatch(/Lisbon in May[\s\S]*Alfama/);
    // The recent messages go along too: turn 1's exchange, then the new question.
    expect(turn2?.messages.slice(1)).toEqual([
      { role: 'user', content: 'I am planning a week in Lisbon in May. Where should I stay?' },
      { role: 'assistant', content: 'Stay in Alfama, near the castle.' },
      { role: 'user', content: 'How do I get to the castle from there?' },
    ]);
    expect(JSON.stringify(turn2)).not.toContain('"ctx"');

    const stored = await readStored(file, 'trip');
    expect(stored).toMatchObject({ userId: 'alice', version: 2 });
    expect(stored?.summary).toMatch(/tram 28/);
  });

  it('keeps going when the model fails, and records nothing for that message', async () => {
    const file = join(folder, `${randomUUID()}.db`);
    // No scripted reply: the server answers 500 with OpenAI's error body.
    const run = await runChat(
      ['--store', `sqlite:${file}`, '--session', 'down', '--user', 'alice'],
      ['Hello?', '/context'],
      { env: modelEnv() },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/error: no reply from the model: .*Your message was not kept/);
    expect(run.stdout).toContain('Session down: no context yet');
    expect(await readStored(file, 'down')).toBeNull();
  });
});

describe('startup', () => {
  it('explains how to get a model when none is configured, without opening a store', async () => {
    const file = join(folder, `${randomUUID()}.db`);
    const run = await runChat(['--store', `sqlite:${file}`], [], { env: chatEnv() });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('needs a chat model for its replies');
    expect(existsSync(file)).toBe(false);
  });

  it('exits with 2 on a bad flag', async () => {
    const run = await runChat(['--nope'], [], { env: modelEnv() });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/ai-sdk-chat: .*Run "ai-sdk-chat --help"/);
  });
});
