import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRepositoryFromUrl } from '@ctx/config';
import type { SessionContext } from '@ctx/core';
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
    columns: tty?.columns,
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
