import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerRound } from '../src/worker.js';
import {
  buildBinary,
  deleteRedisPrefix,
  dropPostgresSchema,
  fakeModelEnv,
  killRunningBinaries,
  oneErrorLine,
  openRepository,
  POSTGRES_URL,
  REDIS_URL,
  randomName,
  recordTurns,
  runBinary,
  runInProcess,
  spawnBinary,
  startFakeModel,
  withQuery,
} from './helpers.js';

beforeAll(async () => {
  await buildBinary();
});
afterAll(() => killRunningBinaries());

const ROUND_KEYS = ['durationMs', 'failed', 'round', 'sessions', 'turns'];

/** The `--json` lines of a worker's stdout, each checked for the documented shape. */
function rounds(stdout: string): WorkerRound[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const round = JSON.parse(line) as WorkerRound;
      expect(Object.keys(round).sort()).toEqual(
        round.error === undefined ? ROUND_KEYS : [...ROUND_KEYS, 'error'].sort(),
      );
      for (const key of ROUND_KEYS) {
        expect(Number.isInteger(round[key as keyof WorkerRound]), key).toBe(true);
      }
      return round;
    });
}

/** Asserts nothing is pending in the store any more, and returns its snapshots by session id. */
async function expectAllFolded(storeUrl: string, sessionIds: string[]) {
  const repository = await openRepository(storeUrl);
  try {
    expect(
      await repository.sessionsWithPendingTurns({ recordedBefore: new Date(Date.now() + 60_000) }),
    ).toEqual([]);
    const snapshots = new Map();
    for (const sessionId of sessionIds) {
      expect(await repository.pendingTurns(sessionId)).toEqual([]);
      snapshots.set(sessionId, await repository.get(sessionId));
    }
    return snapshots;
  } finally {
    await repository.close();
  }
}

async function pendingTurnIds(storeUrl: string, sessionId: string): Promise<string[]> {
  const repository = await openRepository(storeUrl);
  try {
    return (await repository.pendingTurns(sessionId)).map((turn) => turn.turnId);
  } finally {
    await repository.close();
  }
}

const pendingCount = async (storeUrl: string, sessionId: string) =>
  (await pendingTurnIds(storeUrl, sessionId)).length;

/** Polls until the session has a snapshot (as a second instance would read it). */
async function waitForSnapshot(storeUrl: string, sessionId: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  const repository = await openRepository(storeUrl);
  try {
    for (;;) {
      const found = await repository.get(sessionId);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`session "${sessionId}" was not folded in time`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await repository.close();
  }
}

/**
 * The same checks on every store: turns left pending are folded by one `--once` round; a running
 * worker folds turns recorded while it runs, then stops on SIGTERM, quickly and with exit 0.
 */
function describeWorkerOn(name: string, storeUrl: () => string, prepare: () => Promise<void>) {
  describe(`ctx worker (the binary) on ${name}`, () => {
    beforeAll(prepare);

    it('--once --older-than 0 folds every pending turn once, then finds nothing to do', async () => {
      const store = storeUrl();
      const sessions = Array.from({ length: 12 }, (_, index) => randomName(`once${index}`));
      await recordTurns(
        store,
        sessions.flatMap((sessionId, index) => [
          { sessionId, text: `We picked region number ${index} for the deploy.` },
          { sessionId, text: `The database for ${index} is PostgreSQL.` },
        ]),
      );
      const result = await runBinary(['worker', '--once', '--older-than', '0', '--store', store]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      // Four drains walk the same sessions: leases keep each session to one of them.
      expect(result.stdout).toMatch(/^Round 1: folded 24 turns of 12 sessions in \d+ ms\.\n$/);
      const snapshots = await expectAllFolded(store, sessions);
      for (const [index, sessionId] of sessions.entries()) {
        expect(snapshots.get(sessionId)).toMatchObject({ version: 1, userId: 'alice' });
        expect(snapshots.get(sessionId).summary).toContain(`region number ${index}`);
      }

      const again = await runBinary([
        'worker',
        '--once',
        '--older-than',
        '0',
        '--json',
        '--store',
        store,
      ]);
      expect(again.code).toBe(0);
      expect(rounds(again.stdout)).toEqual([
        { round: 1, sessions: 0, turns: 0, failed: 0, durationMs: expect.any(Number) },
      ]);
    });

    it('folds turns recorded while it runs, and exits 0 within two seconds of SIGTERM', async () => {
      const store = storeUrl();
      const worker = spawnBinary([
        'worker',
        '--older-than',
        '0',
        '--interval',
        '50',
        '--json',
        '--store',
        store,
      ]);
      await worker.waitFor((stdout) => stdout.includes('"round":1,'));
      const sessionId = randomName('live');
      await recordTurns(store, [
        { sessionId, text: 'We will ship the beta on Friday.' },
        { sessionId, text: 'The beta goes to ten customers.' },
      ]);
      const folded = await waitForSnapshot(store, sessionId);
      expect(folded.summary).toContain('ship the beta on Friday');
      await worker.waitFor((stdout) => rounds(stdout).some((round) => round.turns > 0));

      const signalled = Date.now();
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalled).toBeLessThan(2000);
      expect(worker.stderr()).toBe('');
      const all = rounds(worker.stdout());
      expect(all.map((round) => round.round)).toEqual(all.map((_, index) => index + 1));
      expect(all.reduce((sum, round) => sum + round.turns, 0)).toBe(2);
      await expectAllFolded(store, [sessionId]);
    });
  });
}

const folder = mkdtempSync(join(tmpdir(), 'ctx-cli-worker-'));
const sqliteStore = `sqlite:${join(folder, 'ctx.db')}`;
afterAll(() => rmSync(folder, { recursive: true, force: true }));
/** A new SQLite file (created by the first {@link recordTurns}), so tests do not see each other's turns. */
const newSqliteStore = () => `sqlite:${join(folder, `${randomName('store')}.db`)}`;

describeWorkerOn(
  'a SQLite file',
  () => sqliteStore,
  async () => {
    const migrated = await runBinary(['migrate', '--store', sqliteStore]);
    expect(migrated.code).toBe(0);
  },
);

const schema = randomName('ctx_cli_worker');
const postgresStore = withQuery(POSTGRES_URL, `schema=${schema}`);
describeWorkerOn(
  'PostgreSQL',
  () => postgresStore,
  async () => {
    const migrated = await runBinary(['migrate', '--store', postgresStore]);
    expect(migrated.stderr).toBe('');
  },
);
afterAll(() => dropPostgresSchema(schema));

const prefix = randomName('ctx-cli-worker');
describeWorkerOn(
  'Redis',
  () => withQuery(REDIS_URL, `prefix=${prefix}`),
  async () => undefined,
);
afterAll(() => deleteRedisPrefix(prefix));

describe('ctx worker (the binary): which turns, failures, stopping', () => {
  it('leaves turns younger than --older-than to the instance that recorded them', async () => {
    const store = newSqliteStore();
    const sessionId = randomName('fresh');
    await recordTurns(store, [{ sessionId, text: 'We use blue-green deploys.' }]);
    const result = await runBinary([
      'worker',
      '--once',
      '--older-than',
      '60000',
      '--json',
      '--store',
      store,
    ]);
    expect(result.code).toBe(0);
    expect(rounds(result.stdout)).toMatchObject([{ sessions: 0, turns: 0 }]);
    expect(await pendingCount(store, sessionId)).toBe(1);
    // The default (5 s) leaves it too: it was recorded a moment ago.
    const byDefault = await runBinary(['worker', '--once', '--json', '--store', store]);
    expect(rounds(byDefault.stdout)).toMatchObject([{ sessions: 0, turns: 0 }]);
    expect(await pendingCount(store, sessionId)).toBe(1);
  });

  it('logs a failed fold on one line with its code and goes on to fold it in a later round', async () => {
    const model = await startFakeModel((index) =>
      index === 0 ? { status: 400 } : { summary: 'The team deploys with blue-green releases.' },
    );
    try {
      const store = newSqliteStore();
      const sessionId = randomName('flaky');
      await recordTurns(store, [{ sessionId, text: 'We deploy with blue-green releases.' }]);
      const [pending] = await pendingTurnIds(store, sessionId);
      const worker = spawnBinary(
        ['worker', '--older-than', '0', '--interval', '50', '--concurrency', '1', '--store', store],
        fakeModelEnv(model),
      );
      await worker.waitFor((stdout) => /Round \d+: folded/.test(stdout));
      const snapshot = await waitForSnapshot(store, sessionId);
      expect(snapshot.summary).toBe('The team deploys with blue-green releases.');
      worker.child.kill('SIGTERM');
      expect((await worker.exited).code).toBe(0);
      const failure = oneErrorLine(worker.stderr());
      expect(failure).toMatch(/^ctx: worker: session "[^"]+" not folded \(EXTRACTION_FAILED\): /);
      expect(failure).toContain('its turns stay pending');
      // It names the turn the failed extraction was folding, for ctx pending / ctx discard.
      expect(failure).toMatch(/ \(the extraction was folding turn [^ )]+\)$/);
      expect(failure).toContain(`folding turn ${pending})`);
      expect(worker.stdout()).toMatch(/^Worker on sqlite:.* with OpenAI test-model via /);
      expect(worker.stdout()).toMatch(
        /Stopped \(SIGTERM\) after \d+ rounds: folded \d+ turns?\.\n$/,
      );
    } finally {
      await model.close();
    }
  });

  it('--once exits 1 when a fold failed, and the turns stay pending', async () => {
    const model = await startFakeModel(() => ({ status: 400 }));
    try {
      const store = newSqliteStore();
      const sessionId = randomName('failing');
      await recordTurns(store, [{ sessionId, text: 'We keep a changelog.' }]);
      const result = await runBinary(
        ['worker', '--once', '--older-than', '0', '--concurrency', '1', '--json', '--store', store],
        { env: fakeModelEnv(model) },
      );
      expect(result.code).toBe(1);
      expect(oneErrorLine(result.stderr)).toContain(
        `session "${sessionId}" not folded (EXTRACTION_FAILED)`,
      );
      expect(rounds(result.stdout)).toMatchObject([{ failed: 1 }]);
      expect(await pendingCount(store, sessionId)).toBe(1);
    } finally {
      await model.close();
    }
  });

  it('stops on SIGINT while a model call hangs: the drain is aborted and the turn stays pending', async () => {
    const model = await startFakeModel(() => ({ hang: true }));
    try {
      const store = newSqliteStore();
      const sessionId = randomName('hanging');
      await recordTurns(store, [{ sessionId, text: 'We rotate keys monthly.' }]);
      const worker = spawnBinary(
        ['worker', '--older-than', '0', '--json', '--store', store],
        fakeModelEnv(model),
      );
      await worker.waitFor(() => model.requests() > 0);
      const signalled = Date.now();
      worker.child.kill('SIGINT');
      expect(await worker.exited).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalled).toBeLessThan(2000);
      // An aborted fold is not a failure: no error line.
      expect(worker.stderr()).toBe('');
      expect(await pendingCount(store, sessionId)).toBe(1);
    } finally {
      await model.close();
    }
  });
});

describe('ctx worker: errors', () => {
  it.each([
    ['redis://127.0.0.1:1', ['--timeout', '1000']],
    ['postgres://postgres:hunter2@127.0.0.1:1/x', []],
  ])('%s: exits 1 with one line when the store is unreachable at start', async (url, args) => {
    const result = await runBinary(['worker', ...args, '--store', url]);
    expect(result.code).toBe(1);
    const line = oneErrorLine(result.stderr);
    expect(line).toContain('store unreachable');
    expect(line).not.toContain('hunter2');
    expect(result.stdout).toBe('');
    expect(result.elapsedMs).toBeLessThan(5000);
  });

  it('exits 1 when the SQLite file does not exist, and 1 on a bad CTX_MODEL', async () => {
    const missing = await runInProcess(['worker', '--store', `sqlite:${join(folder, 'nope.db')}`]);
    expect(missing.code).toBe(1);
    expect(oneErrorLine(missing.stderr)).toContain('does not exist');
    const badModel = await runInProcess(['worker', '--once', '--store', sqliteStore], {
      env: { CTX_MODEL: 'openai:gpt-x' },
    });
    expect(badModel.code).toBe(1);
    expect(oneErrorLine(badModel.stderr)).toContain('CTX_MODEL');
  });

  it.each([
    [['--interval', '0'], '--interval must be a whole number from 10'],
    [['--interval', 'soon'], '--interval must be a whole number'],
    [['--older-than', '-1'], '--older-than'],
    [['--concurrency', '0'], '--concurrency must be a whole number from 1 to 64'],
    [['--concurrency', '65'], '--concurrency must be a whole number from 1 to 64'],
    [['--limit', '0'], '--limit must be a whole number from 1 to 10000'],
    [['--instructions', ' '], '--instructions needs a text'],
    [['--user', 'alice'], 'worker does not take --user'],
    [['--max-chars', '100'], 'worker does not take --max-chars'],
    [['extra'], 'worker takes no arguments'],
  ])('refuses %j with exit 2 and one line', async (args, fragment) => {
    const result = await runInProcess(['worker', ...args, '--store', sqliteStore]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(oneErrorLine(result.stderr)).toContain(fragment);
  });

  it('the binary exits 2 on a bad option too', async () => {
    const result = await runBinary(['worker', '--concurrency', 'many', '--store', sqliteStore]);
    expect(result.code).toBe(2);
    expect(oneErrorLine(result.stderr)).toContain('--concurrency');
  });
});

describe('runCli worker (in-process)', () => {
  it('runs until onStopRequest calls its listener, then resolves 0 and unsubscribes', async () => {
    const store = newSqliteStore();
    const sessionId = randomName('embedded');
    await recordTurns(store, [{ sessionId, text: 'We run the worker inside our app.' }]);
    let stopListener: ((reason: string) => void) | undefined;
    let unsubscribed = false;
    const { runCli } = await import('../src/index.js');
    const { captureOutput } = await import('./helpers.js');
    const stdout = captureOutput();
    const stderr = captureOutput();
    const done = runCli(['worker', '--older-than', '0', '--interval', '20', '--store', store], {
      stdout,
      stderr,
      env: {},
      onStopRequest(listener) {
        stopListener = listener;
        return () => {
          unsubscribed = true;
        };
      },
    });
    await waitForSnapshot(store, sessionId);
    expect(stopListener).toBeDefined();
    stopListener?.('test');
    expect(await done).toBe(0);
    expect(unsubscribed).toBe(true);
    expect(stderr.text()).toBe('');
    expect(stdout.text()).toMatch(/Stopped \(test\) after \d+ rounds?: folded \d+ turns?\.\n$/);
  });
});
