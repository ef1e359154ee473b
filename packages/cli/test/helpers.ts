import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRepositoryFromUrl } from '@ctx/config';
import type { ContextRepository, Message, SessionContext, TurnLog } from '@ctx/core';
import { createRedisKeyLayout } from '@ctx/store-redis';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { type CliOutput, runCli } from '../src/index.js';

export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
/** The PostgreSQL server the service-backed tests use. */
export const POSTGRES_URL =
  process.env.CTX_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The Redis server the service-backed tests use. */
export const REDIS_URL = process.env.CTX_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The MySQL or MariaDB server the service-backed tests use. */
export const MYSQL_URL = process.env.CTX_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** Builds `dist/` the way `pnpm build` does, so the tests run the real binary. */
export async function buildBinary(): Promise<void> {
  await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: PACKAGE_ROOT });
}

/** A random lower-case identifier, so suites can share one server. */
export function randomName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** Appends a query string to a URL that may already have one. */
export function withQuery(url: string, query: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${query}`;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall-clock time until the process exited, in milliseconds. */
  elapsedMs: number;
}

/**
 * Runs `node dist/bin.js …` as a user would, with `env` added to a clean environment (no
 * CTX_STORE_URL leaking in from the developer's shell), and collects its output.
 */
export function runBinary(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; input?: string } = {},
): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? PACKAGE_ROOT,
      env: { PATH: process.env.PATH ?? '', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, elapsedMs: Date.now() - started });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** An in-memory {@link CliOutput} that records what was written. */
export function captureOutput(tty?: { columns: number }): CliOutput & { text(): string } {
  let text = '';
  return {
    write(chunk: string) {
      text += chunk;
      return true;
    },
    isTTY: tty !== undefined,
    ...(tty === undefined ? {} : { columns: tty.columns }),
    text: () => text,
  };
}

/** Runs {@link runCli} in-process and returns its exit code and output. */
export async function runInProcess(
  args: string[],
  options: { env?: Record<string, string>; tty?: { columns: number } } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = captureOutput(options.tty);
  const stderr = captureOutput();
  const code = await runCli(args, { stdout, stderr, env: options.env ?? {} });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** A snapshot for seeding; `minute` orders sessions by `updatedAt`. */
export function snapshot(
  sessionId: string,
  minute: number,
  overrides: Partial<SessionContext> = {},
): SessionContext {
  const at = new Date(Date.UTC(2026, 0, 15, 9, minute, 0, 250));
  return {
    sessionId,
    userId: 'alice',
    summary: `Working on step ${minute} of the todo REST API.`,
    goal: null,
    plan: null,
    progress: null,
    createdAt: at,
    updatedAt: at,
    version: 1,
    fields: null,
    ...overrides,
  };
}

/** Writes snapshots through the adapter a store URL names (creating tables as needed). */
export async function seed(storeUrl: string, snapshots: SessionContext[]): Promise<void> {
  const repository = await createRepositoryFromUrl(storeUrl);
  try {
    for (const item of snapshots) await repository.save(item, { expectedVersion: null });
  } finally {
    await repository.close();
  }
}

/** Asserts the shape every expected error has: exactly one line, starting with `ctx: `. */
export function oneErrorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((line) => line !== '');
  if (lines.length !== 1 || !lines[0]?.startsWith('ctx: ')) {
    throw new Error(`expected one "ctx: …" line on stderr, got:\n${stderr}`);
  }
  return lines[0];
}

/** A `ctx` process that keeps running (`ctx worker`), with what it printed so far. */
export interface RunningBinary {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Resolves once `predicate` holds (checked on every chunk of output and every 25 ms), or
   * rejects when the process ends first or after `timeoutMs`.
   */
  waitFor(predicate: (stdout: string) => boolean, timeoutMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Kills (SIGKILL) every process {@link spawnBinary} started that still runs. */
export function killRunningBinaries(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Starts `node dist/bin.js …` with `env` added to a clean environment, without waiting for it. */
export function spawnBinary(args: string[], env: Record<string, string> = {}): RunningBinary {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: PACKAGE_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const watcher of watchers) watcher();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      running.delete(child);
      for (const watcher of watchers) watcher();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitFor(predicate, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(stdout)) {
            done();
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`ctx exited (${child.exitCode}) first:\n${stdout}\n${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out after ${timeoutMs} ms; output:\n${stdout}\n${stderr}`));
        }, timeoutMs);
        // The predicate may watch something else than the output, too.
        const poll = setInterval(check, 25);
        const done = () => {
          clearTimeout(timer);
          clearInterval(poll);
          watchers.delete(check);
        };
        watchers.add(check);
        check();
      });
    },
  };
}

/** A repository with its turn log, as every built-in store has it. */
export type TurnLogRepository = ContextRepository & TurnLog;

/** Opens the repository a store URL names (creating tables as needed), with its turn log. */
export async function openRepository(storeUrl: string): Promise<TurnLogRepository> {
  return (await createRepositoryFromUrl(storeUrl)) as TurnLogRepository;
}

/** A turn whose words the extractive extractor keeps in the summary. */
export function turn(text: string): Message[] {
  return [
    { role: 'user', content: text },
    { role: 'assistant', content: `Noted: ${text}` },
  ];
}

/** Records turns the way an instance that crashed before folding leaves them: pending in the log. */
export async function recordTurns(
  storeUrl: string,
  turns: { sessionId: string; text: string; userId?: string }[],
): Promise<void> {
  const repository = await openRepository(storeUrl);
  try {
    for (const item of turns) {
      await repository.recordTurn(item.sessionId, {
        turnId: randomUUID(),
        userId: item.userId ?? 'alice',
        messages: turn(item.text),
      });
    }
  } finally {
    await repository.close();
  }
}

/** A local server speaking OpenAI's Chat Completions protocol; `reply` decides each answer. */
export interface FakeModel {
  /** The base URL for `OPENAI_BASE_URL` (with `/v1`). */
  baseURL: string;
  /** How many completions were asked for. */
  requests(): number;
  close(): Promise<void>;
}

/** What a {@link FakeModel} answers: a summary, an HTTP error, or nothing for a long time. */
export type FakeAnswer = { summary: string } | { status: number } | { hang: true };

/** Starts a {@link FakeModel}; `reply` gets the 0-based number of the request. */
export async function startFakeModel(reply: (index: number) => FakeAnswer): Promise<FakeModel> {
  let requests = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const answer = reply(requests++);
      if ('hang' in answer) return;
      if ('status' in answer) {
        response.writeHead(answer.status, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({ error: { message: 'test failure', type: 'invalid_request_error' } }),
        );
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          id: `chatcmpl-${randomUUID()}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: 'test-model',
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant',
                content: JSON.stringify({ summary: answer.summary }),
                refusal: null,
              },
              logprobs: null,
              finish_reason: 'stop',
            },
          ],
          usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The environment that makes `ctx worker` extract with a {@link FakeModel}. */
export function fakeModelEnv(model: FakeModel): Record<string, string> {
  return {
    CTX_MODEL: 'openai:test-model',
    OPENAI_BASE_URL: model.baseURL,
    OPENAI_API_KEY: 'test-key',
  };
}

/** Drops the PostgreSQL schema a test file created (its tables and all), after the file. */
export async function dropPostgresSchema(schema: string): Promise<void> {
  const admin = new DataSource({ type: 'postgres', url: POSTGRES_URL, poolSize: 1 });
  await admin.initialize();
  try {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await admin.destroy();
  }
}

/** Deletes every Redis key under the store key prefix a test file used. */
export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const raw = new Redis(REDIS_URL);
  try {
    const keys = await raw.keys(`${createRedisKeyLayout(prefix).base}*`);
    if (keys.length > 0) await raw.del(...keys);
  } finally {
    raw.disconnect();
  }
}
