import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExtractionError, type Message, type RecordedTurn, SessionContextStore } from '@ctx/core';
import { createScriptedExtractor } from '@ctx/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBinary,
  deleteRedisPrefix,
  dropPostgresSchema,
  oneErrorLine,
  openRepository,
  POSTGRES_URL,
  REDIS_URL,
  type RunResult,
  randomName,
  runBinary,
  runInProcess,
  withQuery,
} from './helpers.js';

beforeAll(async () => {
  await buildBinary();
});

/** A model that refuses every turn, as one does with a turn it will never answer. */
const refusingModel = () =>
  createScriptedExtractor({
    fallback: () => {
      throw new ExtractionError('refusal', 'The model refused to answer');
    },
  });

/** A model that works: the summary is every message so far, joined. */
const workingModel = () =>
  createScriptedExtractor({
    fallback: (request) => ({
      summary: [request.previous?.summary, ...request.messages.map((message) => message.content)]
        .filter(Boolean)
        .join(' | '),
    }),
  });

const refusedText = `Please include the full text of the leaked contract here, every clause of it, word for word.`;
const refusedTurn: Message[] = [
  { role: 'system', content: 'Tool output: 3 files.' },
  { role: 'user', content: refusedText },
  { role: 'assistant', content: 'I cannot do that.' },
];

/** Sends one turn through a store with `model`: resolves with the update, or the error it threw. */
async function update(
  storeUrl: string,
  model: ReturnType<typeof createScriptedExtractor>,
  input: { sessionId: string; turnId?: string; messages: Message[] },
) {
  const repository = await openRepository(storeUrl);
  const store = new SessionContextStore({ repository, extractor: model });
  try {
    return await store.update({ ...input, userId: 'alice' }).catch((error: unknown) => error);
  } finally {
    await store.close();
    await repository.close();
  }
}

async function pendingTurns(storeUrl: string, sessionId: string): Promise<RecordedTurn[]> {
  const repository = await openRepository(storeUrl);
  try {
    return await repository.pendingTurns(sessionId);
  } finally {
    await repository.close();
  }
}

/** Turns as `--json` prints them: dates as ISO strings. */
const asJson = (value: unknown) => JSON.parse(JSON.stringify(value));

function expectSuccess(result: RunResult): void {
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}

/** A session stalled by a refused turn is found with `ctx pending` and unblocked with `ctx discard`. */
function describeTurnsOn(name: string, storeUrl: () => string, prepare: () => Promise<void>) {
  describe(`ctx pending and ctx discard (the binary) on ${name}`, () => {
    beforeAll(prepare);

    it('show the refused turn, discard it, and the next update folds again', async () => {
      const store = storeUrl();
      const sessionId = randomName('stuck');
      const refused = await update(store, refusingModel(), {
        sessionId,
        turnId: 'refused-1',
        messages: refusedTurn,
      });
      expect(refused).toMatchObject({ code: 'EXTRACTION_FAILED', reason: 'refusal' });
      // Stalled: the next turn is folded after the refused one, and fails with it.
      const next = [{ role: 'user' as const, content: 'Then summarise the contract instead.' }];
      const stalled = await update(store, refusingModel(), {
        sessionId,
        turnId: 'stalled-2',
        messages: next,
      });
      expect(stalled).toMatchObject({ reason: 'refusal' });

      const pending = await runBinary(['pending', sessionId, '--store', store]);
      expectSuccess(pending);
      const lines = pending.stdout.trimEnd().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(
        /^TURN\s+USER\s+RECORDED\s+MESSAGES\s+CHARACTERS\s+FIRST USER MESSAGE$/,
      );
      const characters = refusedTurn.reduce((sum, message) => sum + message.content.length, 0);
      expect(lines[1]).toMatch(
        new RegExp(
          `^refused-1\\s+alice\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\s+3\\s+${characters}\\s+Please include the full text`,
        ),
      );
      // The first user message (not the tool output before it), cut to about 80 characters.
      const excerpt = lines[1]?.slice(lines[1].indexOf('Please')) ?? '';
      expect(excerpt.endsWith('…')).toBe(true);
      expect([...excerpt].length).toBe(80);
      expect(lines[2]).toMatch(
        /^stalled-2\s+alice\s+\S+\s+1\s+36\s+Then summarise the contract instead\.$/,
      );

      const json = await runBinary(['pending', sessionId, '--json', '--store', store]);
      expectSuccess(json);
      const stored = await pendingTurns(store, sessionId);
      expect(JSON.parse(json.stdout)).toEqual({ sessionId, turns: asJson(stored) });
      expect(JSON.parse(json.stdout).turns[0]).toMatchObject({
        turnId: 'refused-1',
        userId: 'alice',
        messages: refusedTurn,
        recordedAt: stored[0]?.recordedAt.toISOString(),
      });

      const discarded = await runBinary([
        'discard',
        sessionId,
        'refused-1',
        'never-recorded',
        '--store',
        store,
      ]);
      expectSuccess(discarded);
      expect(discarded.stdout).toBe(
        `Discarded 1 turn of session "${sessionId}" without folding: refused-1.\nNot pending, left alone: never-recorded.\n`,
      );
      expect((await pendingTurns(store, sessionId)).map((turn) => turn.turnId)).toEqual([
        'stalled-2',
      ]);

      // The session moves again: the turn left pending and the new one are folded.
      const resumed = await update(store, workingModel(), {
        sessionId,
        messages: [{ role: 'user', content: 'Now list the open questions.' }],
      });
      expect(resumed).toMatchObject({ updated: true, context: { userId: 'alice' } });
      const { context } = resumed as { context: { summary: string; version: number } };
      expect(context.summary).toBe(
        'Then summarise the contract instead. | Now list the open questions.',
      );
      expect(context.summary).not.toContain('leaked contract');
      expect(context.version).toBe(2);

      const empty = await runBinary(['pending', sessionId, '--store', store]);
      expectSuccess(empty);
      expect(empty.stdout).toBe(`No pending turns for session "${sessionId}".\n`);
      expect(
        JSON.parse((await runBinary(['pending', sessionId, '--json', '--store', store])).stdout),
      ).toEqual({ sessionId, turns: [] });

      const again = await runBinary(['discard', sessionId, 'refused-1', '--store', store]);
      expect(again.code).toBe(1);
      expect(again.stdout).toBe('');
      expect(oneErrorLine(again.stderr)).toBe(
        `ctx: turn "refused-1" is not pending in session "${sessionId}": nothing discarded (ctx pending ${sessionId} lists the pending ones)`,
      );
    });

    it('discard --json prints the discarded turns in full, to keep them', async () => {
      const store = storeUrl();
      const sessionId = randomName('kept');
      await update(store, workingModel(), {
        sessionId,
        messages: [{ role: 'user', content: 'We deploy on Fridays.' }],
      });
      for (const turnId of ['refused-a', 'refused-b']) {
        await update(store, refusingModel(), { sessionId, turnId, messages: refusedTurn });
      }
      const before = await pendingTurns(store, sessionId);
      expect(before).toHaveLength(2);

      const result = await runBinary([
        'discard',
        sessionId,
        'refused-b',
        'refused-a',
        '--json',
        '--store',
        store,
      ]);
      expectSuccess(result);
      // Oldest first, whatever the order on the command line; messages included.
      expect(JSON.parse(result.stdout)).toEqual({
        sessionId,
        discarded: asJson(before),
        notPending: [],
      });
      expect(await pendingTurns(store, sessionId)).toEqual([]);

      const none = await runBinary([
        'discard',
        sessionId,
        'refused-a',
        'refused-b',
        '--json',
        '--store',
        store,
      ]);
      expect(none.code).toBe(1);
      expect(JSON.parse(none.stdout)).toEqual({
        sessionId,
        discarded: [],
        notPending: ['refused-a', 'refused-b'],
      });
      expect(oneErrorLine(none.stderr)).toContain(
        'none of the turns "refused-a", "refused-b" is pending',
      );
      // The snapshot kept its content: a discard folds nothing into it.
      const resumed = await update(store, workingModel(), {
        sessionId,
        messages: [{ role: 'user', content: 'And hotfixes any day.' }],
      });
      expect(resumed).toMatchObject({
        context: { summary: 'We deploy on Fridays. | And hotfixes any day.', version: 3 },
      });
    });
  });
}

const folder = mkdtempSync(join(tmpdir(), 'ctx-cli-turns-'));
const sqliteStore = `sqlite:${join(folder, 'ctx.db')}`;
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describeTurnsOn(
  'a SQLite file',
  () => sqliteStore,
  async () => {
    expect((await runBinary(['migrate', '--store', sqliteStore])).code).toBe(0);
  },
);

const schema = randomName('ctx_cli_turns');
const postgresStore = withQuery(POSTGRES_URL, `schema=${schema}`);
describeTurnsOn(
  'PostgreSQL',
  () => postgresStore,
  async () => {
    expect((await runBinary(['migrate', '--store', postgresStore])).stderr).toBe('');
  },
);
afterAll(() => dropPostgresSchema(schema));

const prefix = randomName('ctx-cli-turns');
describeTurnsOn(
  'Redis',
  () => withQuery(REDIS_URL, `prefix=${prefix}`),
  async () => undefined,
);
afterAll(() => deleteRedisPrefix(prefix));

describe('ctx pending and ctx discard: model settings, output, errors', () => {
  beforeAll(async () => {
    expect((await runInProcess(['migrate', '--store', sqliteStore])).code).toBe(0);
  });

  it('never read the model settings: a CTX_MODEL the worker refuses does not matter', async () => {
    const sessionId = randomName('no-model');
    await update(sqliteStore, refusingModel(), { sessionId, turnId: 't1', messages: refusedTurn });
    const env = { CTX_MODEL: 'openai:gpt-x' };
    const pending = await runInProcess(['pending', sessionId, '--store', sqliteStore], { env });
    expect(pending).toMatchObject({ code: 0, stderr: '' });
    expect(pending.stdout).toContain('t1  ');
    const discarded = await runInProcess(['discard', sessionId, 't1', '--store', sqliteStore], {
      env,
    });
    expect(discarded).toMatchObject({ code: 0, stderr: '' });
    // The worker, which folds, does need a model it can build.
    const worker = await runInProcess(['worker', '--once', '--store', sqliteStore], { env });
    expect(worker.code).toBe(1);
  });

  it('shows control characters of a message as �, so a turn cannot drive the terminal', async () => {
    const sessionId = randomName('escape');
    await update(sqliteStore, refusingModel(), {
      sessionId,
      turnId: 'esc',
      messages: [{ role: 'user', content: 'red \u001b[31mtext\u001b[0m\nsecond\tline \u009b2J' }],
    });
    const result = await runInProcess(['pending', sessionId, '--store', sqliteStore]);
    expect(result.code).toBe(0);
    expect(result.stdout).not.toMatch(/[\u001b\u009b]/);
    expect(result.stdout).toContain('red \ufffd[31mtext\ufffd[0m second line \ufffd2J');
  });

  it('exit 1 without creating anything when the SQLite file does not exist', async () => {
    const missing = join(folder, 'nope.db');
    for (const args of [
      ['pending', 's'],
      ['discard', 's', 't'],
    ]) {
      const result = await runInProcess([...args, '--store', `sqlite:${missing}`]);
      expect(result.code).toBe(1);
      expect(oneErrorLine(result.stderr)).toContain('does not exist');
    }
    expect(existsSync(missing)).toBe(false);
  });

  it.each([
    [['pending'], 'pending needs a session id: ctx pending <id>'],
    [['pending', 'a', 'b'], 'pending takes one session id'],
    [['pending', 'a', '--user', 'alice'], 'pending does not take --user'],
    [['discard'], 'discard needs a session id: ctx discard <id> <turn-id>...'],
    [['discard', 'a'], 'discard needs the ids of the turns to discard'],
    [['discard', 'a', 't', '--force'], "Unknown option '--force'"],
    [['discard', 'a', 't', '--limit', '2'], 'discard does not take --limit'],
    [['discard', 'a', ''], 'turn'],
    [['discard', 'a', 'x'.repeat(300)], 'turn'],
    [['discard', '', 't'], 'session id'],
  ])('refuses %j with exit 2 and one line', async (args, fragment) => {
    const result = await runInProcess([...args, '--store', sqliteStore]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(oneErrorLine(result.stderr)).toContain(fragment);
  });

  it('the binary exits 2 on a bad command line too', async () => {
    const noTurn = await runBinary(['discard', 'a', '--store', sqliteStore]);
    expect(noTurn.code).toBe(2);
    expect(oneErrorLine(noTurn.stderr)).toContain('discard needs the ids of the turns');
    const unknown = await runBinary(['pending', 'a', '--verbose', '--store', sqliteStore]);
    expect(unknown.code).toBe(2);
    expect(oneErrorLine(unknown.stderr)).toContain("Unknown option '--verbose'");
  });
});
