import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SessionContext } from '@ctx/core';
import { createSqliteRepository } from '@ctx/store-sqlite';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chatEnv, runChat, startChat } from './helpers/chat-process.js';
import {
  type ModelServers,
  messagesOf,
  startModelServers,
  summaryOutput,
  transcriptOf,
} from './helpers/model-servers.js';

let servers: ModelServers;
let folder: string;

beforeAll(async () => {
  servers = await startModelServers();
  folder = mkdtempSync(join(tmpdir(), 'ctx-chat-'));
});
afterAll(async () => {
  await servers?.close();
  if (folder) rmSync(folder, { recursive: true, force: true });
});
beforeEach(() => servers.reset());

function modelEnv(extra: Record<string, string> = {}) {
  return chatEnv({ OPENAI_BASE_URL: servers.baseURL, OPENAI_MODEL: 'test-model', ...extra });
}

function freshDatabase(): string {
  return join(folder, `${randomUUID()}.db`);
}

async function readStored(file: string, sessionId: string): Promise<SessionContext | null> {
  const repository = createSqliteRepository({ filename: file });
  try {
    return await repository.get(sessionId);
  } finally {
    await repository.close();
  }
}

async function listStored(file: string): Promise<string[]> {
  const repository = createSqliteRepository({ filename: file });
  try {
    return (await repository.list({ limit: 100 })).items.map((item) => item.sessionId);
  } finally {
    await repository.close();
  }
}

describe('a conversation piped into the chat', () => {
  it('replies, injects the context into the next prompt, and runs every command', async () => {
    const file = freshDatabase();
    servers.replies.enqueue(
      { kind: 'output', text: 'Lisbon in May is warm: pack light clothes.' },
      { kind: 'output', text: 'Bring a light jacket for the evenings.' },
      { kind: 'output', text: 'Miso is a lovely name for a cat.' },
    );
    servers.extractions.enqueue(
      summaryOutput('The user plans a spring city break in Portugal (TRIP-SUMMARY-1).'),
      summaryOutput('The user plans a spring city break; packing: light clothes, a jacket.'),
      summaryOutput('The user adopted a cat and named it Miso.'),
    );

    const run = await runChat(
      ['--store', `sqlite:${file}`, '--session', 'trip', '--user', 'alice'],
      [
        'I am planning a trip to Lisbon in May.',
        '/context',
        'What should I pack?',
        '/context',
        '/switch cat',
        'My new cat needs a name. What about Miso?',
        '/sessions',
        '/switch trip',
        '/forget',
        '/context',
        '/frobnicate',
        '/help',
        '/exit',
        'this line comes after /exit and is never sent',
      ],
      { env: modelEnv() },
    );

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = run.stdout;
    expect(out).toContain('ctx chat · session trip (new, no context yet) · user alice');
    expect(out).toContain(`store:   sqlite:${file}`);
    expect(out).toContain('assistant: Lisbon in May is warm: pack light clothes.');
    expect(out).toContain('assistant: Bring a light jacket for the evenings.');
    expect(out).toContain('assistant: Miso is a lovely name for a cat.');
    // /context flushes the pending update first, so it shows each turn's version.
    expect(out).toMatch(
      /Session trip \(user alice\)\n {2}version 1 .*\n\nSummary:\n {2}The user plans a spring city break in Portugal \(TRIP-SUMMARY-1\)\./,
    );
    expect(out).toMatch(/Session trip \(user alice\)\n {2}version 2 /);
    expect(out).toContain('Switched to session cat (new, no context yet).');
    expect(out).toMatch(
      /Sessions of user alice \(most recent first\):\n\* cat\s+v1 .* The user adopted a cat and named it Miso\.\n {2}trip\s+v2 /,
    );
    expect(out).toMatch(/Switched to session trip \(version 2, updated \d{4}-/);
    expect(out).toContain('Forgot session trip: its context is deleted and the chat starts over.');
    expect(out).toContain('Session trip: no context yet');
    expect(out).toContain('Unknown command "/frobnicate". Type /help to see the commands.');
    expect(out).toMatch(/Commands:\n {2}\/context .*\n {2}\/sessions .*\n {2}\/switch <id> /);
    expect(out).not.toContain('never sent');

    const replies = servers.replies.requests();
    expect(replies).toHaveLength(3);
    expect(replies.map((request) => request.model)).toEqual([
      'test-model',
      'test-model',
      'test-model',
    ]);
    // Turn 1: nothing stored yet, so no block.
    expect(replies[0]?.system).not.toContain('<session_context>\n');
    // Turn 2: the block written after turn 1, plus the recent messages.
    expect(replies[1]?.system).toContain(
      '<session_context>\nSummary: The user plans a spring city break in Portugal (TRIP-SUMMARY-1).\n</session_context>',
    );
    expect(messagesOf(replies[1]!).map((message) => message.role)).toEqual([
      'system',
      'user',
      'assistant',
      'user',
    ]);
    expect(messagesOf(replies[1]!).at(-1)?.content).toBe('What should I pack?');
    // After /switch only the new session's (empty) context is loaded: no history, no block.
    expect(replies[2]?.system).not.toContain('<session_context>\n');
    expect(messagesOf(replies[2]!).slice(1)).toEqual([
      { role: 'user', content: 'My new cat needs a name. What about Miso?' },
    ]);

    const extractions = servers.extractions.requests();
    expect(extractions).toHaveLength(3);
    expect(transcriptOf(extractions[0]!)).toEqual([
      { role: 'user', content: 'I am planning a trip to Lisbon in May.' },
      { role: 'assistant', content: 'Lisbon in May is warm: pack light clothes.' },
    ]);
    // Only the new messages: the previous context stands in for turn 1.
    expect(transcriptOf(extractions[1]!)).toEqual([
      { role: 'user', content: 'What should I pack?' },
      { role: 'assistant', content: 'Bring a light jacket for the evenings.' },
    ]);
    expect(extractions[1]?.user).toContain('TRIP-SUMMARY-1');
    expect(extractions[1]?.user).not.toContain('Lisbon in May');

    // The file: trip was forgotten, cat is stored with its owner.
    expect(await listStored(file)).toEqual(['cat']);
    const cat = await readStored(file, 'cat');
    expect(cat).toMatchObject({
      sessionId: 'cat',
      userId: 'alice',
      summary: 'The user adopted a cat and named it Miso.',
      goal: null,
      plan: null,
      progress: null,
      version: 1,
    });
  });

  it('resumes a stored session in a new process and refuses it to another user', async () => {
    const file = freshDatabase();
    servers.replies.enqueue(
      { kind: 'output', text: 'Noted: the deploy target is Fly.io.' },
      { kind: 'output', text: 'You picked Fly.io.' },
    );
    servers.extractions.enqueue(
      summaryOutput('The user deploys the billing service to Fly.io (DEPLOY-MARKER).'),
    );
    const args = ['--store', `sqlite:${file}`, '--session', 'deploy', '--user', 'alice'];
    const first = await runChat(args, ['We will deploy the billing service to Fly.io.'], {
      env: modelEnv(),
    });
    expect(first.code).toBe(0);
    // EOF flushed the pending update before the process exited.
    expect((await readStored(file, 'deploy'))?.version).toBe(1);

    const second = await runChat(args, ['Which platform did we pick?'], { env: modelEnv() });
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/session deploy \(version 1, updated /);
    expect(second.stdout).toContain('assistant: You picked Fly.io.');
    const resumed = servers.replies.requests()[1]!;
    expect(resumed.system).toContain('DEPLOY-MARKER');
    expect(messagesOf(resumed).slice(1)).toEqual([
      { role: 'user', content: 'Which platform did we pick?' },
    ]);

    const intruder = await runChat(
      ['--store', `sqlite:${file}`, '--session', 'deploy', '--user', 'mallory'],
      ['hello'],
      { env: modelEnv() },
    );
    expect(intruder.code).toBe(1);
    expect(intruder.stderr.trim().split('\n')).toHaveLength(1);
    expect(intruder.stderr).toContain(
      'chat: session deploy belongs to another user than mallory: choose another --session, or the right --user',
    );
    expect(intruder.stdout).toBe('');

    const switcher = await runChat(
      ['--store', `sqlite:${file}`, '--session', 'notes', '--user', 'mallory'],
      ['/switch deploy', '/context'],
      { env: modelEnv() },
    );
    expect(switcher.code).toBe(0);
    expect(switcher.stdout).toContain('error: Session "deploy" belongs to another user');
    expect(switcher.stdout).toContain('Session notes: no context yet');
    expect(switcher.stdout).not.toContain('DEPLOY-MARKER');
  });

  it('keeps the last 6 messages of history; older turns reach the model only through the context', async () => {
    const file = freshDatabase();
    const turns = ['one', 'two', 'three', 'four', 'five'];
    servers.replies.enqueue(
      ...turns.map((turn) => ({ kind: 'output' as const, text: `reply ${turn}` })),
    );
    servers.extractions.enqueue(...turns.map((turn) => summaryOutput(`summary after ${turn}`)));
    const run = await runChat(
      ['--store', `sqlite:${file}`, '--session', 'long'],
      turns.flatMap((turn) => [`message ${turn}`, '/context']),
      { env: modelEnv() },
    );
    expect(run.code).toBe(0);
    const last = servers.replies.requests().at(-1)!;
    expect(messagesOf(last).map((message) => message.content)).toEqual([
      last.system,
      'message two',
      'reply two',
      'message three',
      'reply three',
      'message four',
      'reply four',
      'message five',
    ]);
    expect(last.system).toContain('Summary: summary after four');
  });
});

describe('the context update runs after the reply', () => {
  it('prints the next replies while an extraction is still running, and waits for it at EOF', async () => {
    const file = freshDatabase();
    servers.replies.enqueue(
      { kind: 'output', text: 'First answer.' },
      { kind: 'output', text: 'Second answer.' },
    );
    servers.extractions.enqueue(
      summaryOutput('Summary after the first turn.'),
      summaryOutput('Summary after the second turn.'),
    );
    const release = servers.holdExtractions();
    const chat = startChat(['--store', `sqlite:${file}`, '--session', 'slow'], {
      env: modelEnv(),
    });
    try {
      chat.send('first question');
      await chat.waitFor('assistant: First answer.');
      chat.send('second question');
      await chat.waitFor('assistant: Second answer.');
      // Both replies came while the first extraction was still waiting for the model.
      await expect.poll(() => servers.heldExtractions()).toBe(1);
      expect(servers.extractions.requests()).toHaveLength(0);
      expect(await readStored(file, 'slow')).toBeNull();
    } finally {
      release();
    }
    const run = await chat.end();
    expect(run.code).toBe(0);
    const stored = await readStored(file, 'slow');
    expect(stored).toMatchObject({ summary: 'Summary after the second turn.', version: 2 });
    const extractions = servers.extractions.requests();
    expect(transcriptOf(extractions[1]!).map((message) => message.content)).toEqual([
      'second question',
      'Second answer.',
    ]);
  });

  it('saves the pending update when interrupted with SIGINT', async () => {
    const file = freshDatabase();
    servers.replies.enqueue({ kind: 'output', text: 'Interrupted answer.' });
    servers.extractions.enqueue(summaryOutput('Saved on SIGINT.'));
    const release = servers.holdExtractions();
    const chat = startChat(['--store', `sqlite:${file}`, '--session', 'sigint'], {
      env: modelEnv(),
    });
    chat.send('a question before Ctrl-C');
    await chat.waitFor('assistant: Interrupted answer.');
    await expect.poll(() => servers.heldExtractions()).toBe(1);
    chat.child.kill('SIGINT');
    setTimeout(release, 200);
    const run = await chat.exited();
    expect(run.code).toBe(0);
    expect(await readStored(file, 'sigint')).toMatchObject({
      summary: 'Saved on SIGINT.',
      version: 1,
    });
  });

  it('reports a failed fold as one line, keeps the turn recorded for the next fold and keeps chatting', async () => {
    const file = freshDatabase();
    servers.replies.enqueue(
      { kind: 'output', text: 'Answer one.' },
      { kind: 'output', text: 'Answer two.' },
    );
    servers.extractions.enqueue(
      { kind: 'http_error', status: 403 },
      summaryOutput('Summary of both turns.'),
    );
    const run = await runChat(
      ['--store', `sqlite:${file}`, '--session', 'flaky'],
      ['question one', '/context', 'question two', '/context'],
      { env: modelEnv() },
    );
    expect(run.code).toBe(0);
    const failures = run.stdout.split('\n').filter((line) => line.includes('not updated'));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(
      /^\(context of flaky not updated yet: .*403.*; the turn stays recorded for the next update\)$/,
    );
    expect(run.stdout).toContain('Session flaky: no context yet');
    expect(run.stdout).toContain('assistant: Answer two.');
    expect(
      transcriptOf(servers.extractions.requests()[1]!).map((message) => message.content),
    ).toEqual(['question one', 'Answer one.', 'question two', 'Answer two.']);
    expect(await readStored(file, 'flaky')).toMatchObject({
      summary: 'Summary of both turns.',
      version: 1,
    });
  });

  it('tells the user at exit when the last turns could not be added to the context', async () => {
    const file = freshDatabase();
    servers.replies.enqueue({ kind: 'output', text: 'Last answer.' });
    servers.extractions.enqueue({ kind: 'http_error', status: 401 });
    const run = await runChat(['--store', `sqlite:${file}`, '--session', 'lost'], ['last words'], {
      env: modelEnv(),
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/\(context of lost not updated yet: .*401/);
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe(
      '(1 turn(s) are recorded but not yet in the session context; the next update folds them)',
    );
    expect(await readStored(file, 'lost')).toBeNull();
  });

  it('says so when the model does not reply, keeps nothing of that turn, and goes on', async () => {
    const file = freshDatabase();
    servers.replies.enqueue(
      { kind: 'http_error', status: 404, code: 'model_not_found' },
      { kind: 'output', text: 'Here I am.' },
    );
    servers.extractions.enqueue(summaryOutput('The user checked that the assistant answers.'));
    const run = await runChat(
      ['--store', `sqlite:${file}`, '--session', 'no-reply'],
      ['lost question', 'are you there?', '/context'],
      { env: modelEnv() },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /error: no reply from the model: .*404.*Your message was not kept; try again\./,
    );
    expect(run.stdout).toContain('assistant: Here I am.');
    expect(messagesOf(servers.replies.requests()[1]!).slice(1)).toEqual([
      { role: 'user', content: 'are you there?' },
    ]);
    expect(
      transcriptOf(servers.extractions.requests()[0]!).map((message) => message.content),
    ).toEqual(['are you there?', 'Here I am.']);
  });
});

describe('planning mode', () => {
  it('asks for goal, plan and completed steps and shows them in /context', async () => {
    const file = freshDatabase();
    servers.replies.enqueue({
      kind: 'output',
      text: '1. Write a Dockerfile 2. Provision the database',
    });
    servers.extractions.enqueue({
      kind: 'output',
      text: JSON.stringify({
        summary: 'The user deploys a Python app; the Dockerfile is written.',
        goal: 'Deploy the Python app to production',
        plan: ['Write a Dockerfile', 'Provision the database'],
        completed_steps: [1],
      }),
    });
    const run = await runChat(
      ['--store', `sqlite:${file}`, '--session', 'plan', '--planning'],
      ['Help me deploy my Python app; I already wrote the Dockerfile.', '/context'],
      { env: modelEnv() },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('planning mode');
    expect(run.stdout).toContain('Goal: Deploy the Python app to production');
    expect(run.stdout).toContain('  [x] 1. Write a Dockerfile\n  [ ] 2. Provision the database');
    const schema = JSON.stringify(servers.extractions.requests()[0]?.schema);
    expect(schema).toContain('completed_steps');
    expect(await readStored(file, 'plan')).toMatchObject({
      goal: 'Deploy the Python app to production',
      progress: ['Write a Dockerfile'],
    });
  });
});

describe('startup', () => {
  it('explains how to get a model and exits 0 without touching the store', async () => {
    const file = join(folder, 'untouched', 'chat.db');
    const run = await runChat(['--store', `sqlite:${file}`], ['hello'], { env: chatEnv() });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('needs a chat model');
    expect(run.stdout).toContain('OPENAI_API_KEY=');
    expect(run.stdout).toContain('GEMINI_API_KEY=');
    expect(run.stdout).toContain('OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_MODEL=llama3.2');
    expect(run.stderr).toBe('');
    expect(existsSync(join(folder, 'untouched'))).toBe(false);
  });

  it('uses ./data/chat.db under the working directory by default and creates the folder', async () => {
    const cwd = join(folder, `cwd-${randomUUID()}`);
    servers.replies.enqueue({ kind: 'output', text: 'Default store answer.' });
    servers.extractions.enqueue(summaryOutput('Stored in the default file.'));
    const { mkdirSync } = await import('node:fs');
    mkdirSync(cwd);
    const run = await runChat([], ['hello'], { env: modelEnv(), cwd });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('store:   sqlite:./data/chat.db');
    expect(run.stdout).toContain('ctx chat · session default');
    expect(await readStored(join(cwd, 'data', 'chat.db'), 'default')).toMatchObject({
      summary: 'Stored in the default file.',
    });
  });

  it('prints the usage with --help and rejects unknown flags with exit code 2', async () => {
    const help = await runChat(['--help'], [], { env: chatEnv() });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--store <url>');
    expect(help.stdout).toContain('/switch <id>');
    const bad = await runChat(['--stor', 'x'], [], { env: chatEnv() });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^chat: Unknown option '--stor'.*--help/);
  });

  it('asks for OPENAI_MODEL when only a local server URL is set', async () => {
    const run = await runChat([], [], { env: chatEnv({ OPENAI_BASE_URL: servers.baseURL }) });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('set OPENAI_MODEL');
  });

  it('fails with one line and exit code 1 when the store URL is invalid', async () => {
    const run = await runChat(['--store', 'mongodb://localhost/db'], [], { env: modelEnv() });
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^chat: cannot open the store mongodb:\/\/localhost\/db: /);
  });
});
