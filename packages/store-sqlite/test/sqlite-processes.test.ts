import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteRepository, SQLITE_SCHEMA_VERSION } from '../src/index.js';
import { makeSnapshot, randomId, removeTempFolders, tempDatabasePath } from './helpers.js';

// The children are plain Node processes: they cannot load TypeScript, so they import the package
// as a user would, by name, from its compiled dist. Building here (the same command as the
// package's `build` script) guarantees dist matches the sources under test.
const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const writerScript = fileURLToPath(new URL('./fixtures/sqlite-writer.mjs', import.meta.url));
const impostorScript = fileURLToPath(new URL('./fixtures/sqlite-impostor.mjs', import.meta.url));
const recorderScript = fileURLToPath(new URL('./fixtures/sqlite-recorder.mjs', import.meta.url));

beforeAll(() => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    cwd: packageRoot,
    stdio: 'pipe',
  });
}, 120_000);

afterAll(removeTempFolders);

interface WriterReport {
  tag: string;
  writes: number;
  conflicts: number;
  unavailable: number;
  openErrors: unknown[];
  foreignErrors: unknown[];
}

interface ImpostorReport {
  attempts: number;
  removed: number;
  absent: number;
  refused: number;
  foreignErrors: unknown[];
}

interface RecorderReport {
  seen: string[];
  results: { turnId: string; sequence: number; duplicate: boolean }[];
  leased: boolean;
}

interface Child<Report> {
  ready: Promise<void>;
  /** Resolves when the child printed `line`. */
  waitFor(line: string): Promise<void>;
  /** Writes one line to the child's stdin; `last` closes it. */
  send(line: string, last?: boolean): void;
  /** The exit code, the last stdout line as JSON, and stderr. */
  done: Promise<{ exitCode: number | null; report: Report | undefined; stderr: string }>;
}

interface Writer extends Child<WriterReport> {
  /** Resolves when the child first met STORAGE_UNAVAILABLE. */
  busy(): Promise<void>;
  go(): void;
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function spawnChild<Report>(script: string, args: string[], label: string): Child<Report> {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: packageRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  const waiters: { line: string; resolve: () => void }[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const waiter of waiters) if (stdout.split('\n').includes(waiter.line)) waiter.resolve();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<{ exitCode: number | null; report: Report | undefined; stderr: string }>(
    (resolve) => {
      child.on('close', (exitCode) => {
        const last = stdout.trim().split('\n').pop() ?? '';
        let report: Report | undefined;
        try {
          report = JSON.parse(last) as Report;
        } catch {
          report = undefined;
        }
        resolve({ exitCode, report, stderr });
      });
    },
  );
  const waitFor = (line: string) =>
    Promise.race([
      new Promise<void>((resolve) => waiters.push({ line, resolve })),
      done.then(({ exitCode }) => {
        throw new Error(`${label} exited (${exitCode}) before printing "${line}": ${stderr}`);
      }),
    ]);
  return {
    ready: waitFor('ready'),
    waitFor,
    send: (line, last = false) => {
      if (last) child.stdin.end(`${line}\n`);
      else child.stdin.write(`${line}\n`);
    },
    done,
  };
}

function spawnWriter(
  filename: string,
  sessionId: string,
  tag: string,
  writes: number,
  busyTimeoutMs?: number,
): Writer {
  const args = [filename, sessionId, tag, String(writes)];
  if (busyTimeoutMs !== undefined) args.push(String(busyTimeoutMs));
  const child = spawnChild<WriterReport>(writerScript, args, `writer ${tag}`);
  return { ...child, busy: () => child.waitFor('busy'), go: () => child.send('go', true) };
}

async function expectEveryMark(
  filename: string,
  sessionId: string,
  marks: string[],
): Promise<void> {
  const repository = createSqliteRepository({ filename });
  const stored = await repository.get(sessionId);
  await repository.close();
  expect(stored?.version).toBe(marks.length);
  const lines = stored?.summary.split('\n') ?? [];
  expect(lines).toHaveLength(marks.length);
  expect([...lines].sort()).toEqual([...marks].sort());
}

describe('two OS processes writing one session', () => {
  it('open a new file at once (one migration) and lose no update', async () => {
    const filename = tempDatabasePath();
    const sessionId = randomId('shared');
    const writesEach = 150;
    const writers = ['a', 'b'].map((tag) => spawnWriter(filename, sessionId, tag, writesEach));
    await Promise.all(writers.map((writer) => writer.ready));
    for (const writer of writers) writer.go();
    const results = await Promise.all(writers.map((writer) => writer.done));

    if (process.env.CTX_DEBUG) console.log(results.map((result) => result.report));
    for (const { exitCode, report, stderr } of results) {
      expect(stderr).toBe('');
      expect(exitCode).toBe(0);
      expect(report?.openErrors).toEqual([]);
      expect(report?.foreignErrors).toEqual([]);
      // BEGIN IMMEDIATE plus the default busy timeout absorbs the contention entirely.
      expect(report?.unavailable).toBe(0);
      expect(report?.writes).toBe(writesEach);
    }
    // The writers really raced: some read-modify-write cycles lost and were retried.
    expect(results.reduce((sum, { report }) => sum + (report?.conflicts ?? 0), 0)).toBeGreaterThan(
      0,
    );
    const marks = ['a', 'b'].flatMap((tag) =>
      Array.from({ length: writesEach }, (_, index) => `${tag}:${index}`),
    );
    await expectEveryMark(filename, sessionId, marks);

    const raw = new Database(filename, { readonly: true });
    expect(raw.prepare('SELECT table_name, schema_version FROM ctx_meta').all()).toEqual([
      { table_name: 'ctx_sessions', schema_version: SQLITE_SCHEMA_VERSION },
    ]);
    raw.close();
  });

  it('see SQLITE_BUSY only as STORAGE_UNAVAILABLE, retry, and still lose no update', async () => {
    const filename = tempDatabasePath();
    await createSqliteRepository({ filename }).close();
    const sessionId = randomId('contended');
    const writesEach = 100;
    // busyTimeoutMs 0: every lock collision surfaces at once instead of being waited out.
    const writers = ['x', 'y'].map((tag) => spawnWriter(filename, sessionId, tag, writesEach, 0));
    await Promise.all(writers.map((writer) => writer.ready));

    const holder = new Database(filename);
    holder.exec('BEGIN IMMEDIATE');
    try {
      for (const writer of writers) writer.go();
      // Both children hit the held lock before it is released.
      await Promise.all(writers.map((writer) => writer.busy()));
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    const results = await Promise.all(writers.map((writer) => writer.done));

    if (process.env.CTX_DEBUG) console.log(results.map((result) => result.report));
    for (const { exitCode, report, stderr } of results) {
      expect(stderr).toBe('');
      expect(exitCode).toBe(0);
      expect(report?.foreignErrors).toEqual([]);
      expect(report?.unavailable).toBeGreaterThan(0);
      expect(report?.writes).toBe(writesEach);
    }
    const marks = ['x', 'y'].flatMap((tag) =>
      Array.from({ length: writesEach }, (_, index) => `${tag}:${index}`),
    );
    await expectEveryMark(filename, sessionId, marks);
  });

  it("an impostor's conditional delete from another process never deletes the owner's session", async () => {
    const filename = tempDatabasePath();
    const owner = createSqliteRepository({ filename });
    const sessionId = randomId('raced');
    const alice = randomId('alice');
    let latest = await owner.save(makeSnapshot({ sessionId, userId: alice }), {
      expectedVersion: null,
    });
    const impostor = spawnChild<ImpostorReport>(
      impostorScript,
      [filename, sessionId, randomId('bob')],
      'impostor',
    );
    await impostor.ready;
    impostor.send('go');
    const rounds = 150;
    let ownerDeletes = 0;
    try {
      for (let round = 0; round < rounds; round += 1) {
        // The owner deletes and re-creates its session while the impostor keeps deleting it.
        if (await owner.delete(sessionId, { userId: alice })) ownerDeletes += 1;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
        latest = await owner.save(
          makeSnapshot({ sessionId, userId: alice, summary: `round ${round}` }),
          { expectedVersion: null },
        );
        expect(latest.version).toBe(round + 2);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
      }
    } finally {
      impostor.send('stop', true);
    }
    const { exitCode, report, stderr } = await impostor.done;

    if (process.env.CTX_DEBUG) console.log(report);
    expect(stderr).toBe('');
    expect(exitCode).toBe(0);
    expect(report?.foreignErrors).toEqual([]);
    expect(report?.removed, "the impostor's delete returned true").toBe(0);
    // The impostor really raced the owner: it was refused while the session was live.
    expect(report?.refused).toBeGreaterThan(0);
    expect(ownerDeletes).toBe(rounds);
    expect(await owner.get(sessionId)).toEqual(latest);
    await owner.close();
  });

  it('share one turn log: each sees the turns the other recorded, and the lease holds across them', async () => {
    const filename = tempDatabasePath();
    const parent = createSqliteRepository({ filename });
    const sessionId = randomId('logged');
    const [own, first, second] = [randomId('turn'), randomId('turn'), randomId('turn')];
    const recorded = await parent.recordTurn(sessionId, {
      turnId: own,
      userId: 'alice',
      messages: [{ role: 'assistant', content: 'from the parent' }],
    });
    expect(await parent.acquireLease(sessionId, { holder: 'parent', ttlMs: 60_000 })).toBe(true);

    const child = spawnChild<RecorderReport>(
      recorderScript,
      [filename, sessionId, first, second],
      'recorder',
    );
    await child.ready;
    const { exitCode, report, stderr } = await child.done;
    expect(stderr).toBe('');
    expect(exitCode).toBe(0);
    expect(report?.seen).toEqual([own]);
    expect(report?.results.map(({ turnId, duplicate }) => ({ turnId, duplicate }))).toEqual([
      { turnId: first, duplicate: false },
      { turnId: second, duplicate: false },
      { turnId: first, duplicate: true },
    ]);
    expect(report?.results[2]?.sequence).toBe(report?.results[0]?.sequence);
    expect(report?.leased, "the child took the parent's lease").toBe(false);

    const pending = await parent.pendingTurns(sessionId);
    expect(
      pending.map(({ turnId, sequence, messages }) => ({ turnId, sequence, messages })),
    ).toEqual([
      {
        turnId: own,
        sequence: recorded.sequence,
        messages: [{ role: 'assistant', content: 'from the parent' }],
      },
      {
        turnId: first,
        sequence: report?.results[0]?.sequence,
        messages: [{ role: 'user', content: 'from the child 🚀' }],
      },
      {
        turnId: second,
        sequence: report?.results[1]?.sequence,
        messages: [{ role: 'user', content: 'second from the child' }],
      },
    ]);
    expect(await parent.sessionsWithPendingTurns()).not.toContain(sessionId);
    await parent.releaseLease(sessionId, 'parent');
    expect(await parent.sessionsWithPendingTurns()).toContain(sessionId);
    await parent.close();
  });
});
