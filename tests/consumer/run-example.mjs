// Runs the root README's example (compiled to JavaScript) in the consumer project, on SQLite, with
// the OpenAI extractor talking to a local OpenAI-compatible server, then checks what was stored.
//   node run-example.mjs <compiled example.js>
// The example runs with the project folder as its working directory, so ./data/ctx.db lands there.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createSqliteRepository } from '@ctx/store-sqlite';
import { EXTRACTION, startFakeOpenAI } from './fake-openai.mjs';

const example = process.argv[2];
if (!example) throw new Error('usage: node run-example.mjs <compiled example.js>');

const server = await startFakeOpenAI();
process.env.OPENAI_BASE_URL = server.baseURL;
process.env.OPENAI_API_KEY = 'sk-consumer-test';
try {
  await import(pathToFileURL(resolve(example)).href);
} finally {
  await server.close();
}

assert.ok(existsSync('data/ctx.db'), 'the example did not create ./data/ctx.db');
assert.equal(server.requests.length, 1, 'expected exactly one extraction request');
const [request] = server.requests;
assert.match(request.path, /^\/v1\/(responses|chat\/completions)$/);

const repository = createSqliteRepository({ filename: './data/ctx.db', migrate: false });
try {
  const page = await repository.list({ limit: 10 });
  assert.equal(page.items.length, 1, 'expected exactly one stored session');
  const context = page.items[0];
  assert.equal(context.version, 1);
  assert.equal(typeof context.userId, 'string');
  assert.equal(context.summary, EXTRACTION.summary);
  assert.equal(context.goal, EXTRACTION.goal);
  assert.deepEqual(context.plan, EXTRACTION.plan);
  assert.deepEqual(context.progress, [EXTRACTION.plan[0]]);
  assert.deepEqual(
    await repository.pendingTurns(context.sessionId),
    [],
    'a turn was left unfolded',
  );
  console.log(
    `README example: session "${context.sessionId}" stored at version ${context.version} via ${request.path}`,
  );
} finally {
  await repository.close();
}
