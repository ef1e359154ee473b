import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type GeminiTestServer,
  geminiReplies,
  startGeminiServer,
} from '../../../packages/model-gemini/test/helpers/gemini-server.js';
import { chatEnv, runChat } from './helpers/chat-process.js';

let server: GeminiTestServer;
let folder: string;

beforeAll(async () => {
  server = await startGeminiServer();
  folder = mkdtempSync(join(tmpdir(), 'ctx-chat-gemini-'));
});
afterAll(async () => {
  await server?.close();
  if (folder) rmSync(folder, { recursive: true, force: true });
});

it('with GEMINI_API_KEY, replies and context updates go through the Gemini API', async () => {
  // `/context` waits for the turn's update, so the requests arrive in a fixed order.
  server.enqueue(
    geminiReplies.text('Gemini reply one.'),
    geminiReplies.text(JSON.stringify({ summary: 'The user greets Gemini (GEMINI-SUMMARY).' })),
    geminiReplies.text('Gemini reply two.'),
    geminiReplies.text(JSON.stringify({ summary: 'The user greeted Gemini twice.' })),
  );
  const run = await runChat(
    ['--store', `sqlite:${join(folder, `${randomUUID()}.db`)}`, '--session', 'g'],
    ['Hello Gemini', '/context', 'Hello again', '/context'],
    {
      env: chatEnv({
        GEMINI_API_KEY: 'test-key',
        GEMINI_BASE_URL: server.baseUrl,
        GEMINI_MODEL: 'gemini-test',
      }),
    },
  );
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain(`replies: Gemini API at ${server.baseUrl} (gemini-test)`);
  expect(run.stdout).toContain('assistant: Gemini reply one.');
  expect(run.stdout).toContain('assistant: Gemini reply two.');
  expect(run.stdout).toContain('The user greeted Gemini twice.');

  const requests = server.requests();
  expect(requests.map((request) => request.model)).toEqual([
    'gemini-test',
    'gemini-test',
    'gemini-test',
    'gemini-test',
  ]);
  const [, extraction, second] = requests;
  expect(extraction?.body.generationConfig?.responseMimeType).toBe('application/json');
  expect(second?.body.generationConfig?.responseMimeType).toBeUndefined();
  const system = (second?.body.systemInstruction?.parts ?? []).map((part) => part.text).join('');
  expect(system).toContain('<session_context>\nSummary: The user greets Gemini (GEMINI-SUMMARY).');
  expect(second?.body.contents).toEqual([
    { role: 'user', parts: [{ text: 'Hello Gemini' }] },
    { role: 'model', parts: [{ text: 'Gemini reply one.' }] },
    { role: 'user', parts: [{ text: 'Hello again' }] },
  ]);
});
