import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { makeSnapshot, nextVersion } from '@ctx/conformance';
import { ContextError, isRetryableError } from '@ctx/core';
import { describe, expect, it } from 'vitest';
import { createPostgresRepository, type PostgresRepository } from '../../src/index.js';
import {
  createTestDataSource,
  dropSchema,
  POSTGRES_URL,
  randomId,
  randomSchema,
} from '../helpers.js';

const ENABLED = process.env.CTX_FAULT_TESTS === '1';
const CONNECT_TIMEOUT_MS = 2_000;
const STATEMENT_TIMEOUT_MS = 3_000;
// Documented worst case: connect (or pool wait) + statement timeout + the 2 s client read grace.
const BOUND_MS = CONNECT_TIMEOUT_MS + STATEMENT_TIMEOUT_MS + 2_000;

const server = new URL(POSTGRES_URL);
const host = server.hostname || '127.0.0.1';
const port = server.port || '5432';

function cluster(action: 'start' | 'stop'): void {
  const [version] = readdirSync('/etc/postgresql');
  if (!version) throw new Error('no PostgreSQL cluster found under /etc/postgresql');
  const args = ['--skip-systemctl-redirect', version, 'main', action];
  if (action === 'stop') args.push('-m', 'fast');
  execFileSync('pg_ctlcluster', args, { stdio: 'pipe' });
}

function isReady(): boolean {
  try {
    execFileSync('pg_isready', ['-h', host, '-p', port], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

async function ensureServerRunning(): Promise<void> {
  if (isReady()) return;
  try {
    cluster('start');
  } catch (error) {
    // Exit code 2: already running (still starting up); pg_isready below decides.
    if ((error as { status?: number }).status !== 2) throw error;
  }
  const deadline = Date.now() + 60_000;
  while (!isReady()) {
    if (Date.now() > deadline) throw new Error('PostgreSQL did not come back within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function failure(action: () => Promise<unknown>): Promise<ContextError> {
  try {
    await action();
  } catch (error) {
    if (ContextError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected the call to fail while the server is down');
}

describe.skipIf(!ENABLED)(
  'PostgreSQL outage (stops and restarts the local server: runs only with CTX_FAULT_TESTS=1, as `pnpm test` and .ci/run set it)',
  () => {
    it('calls fail with STORAGE_UNAVAILABLE within the bound while the server is down; the same repositories work once it is back', async () => {
      const schema = randomSchema('faults');
      const dataSource = createTestDataSource();
      await dataSource.initialize();
      const timeouts = {
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        statementTimeoutMs: STATEMENT_TIMEOUT_MS,
      };
      const owned = createPostgresRepository({ url: POSTGRES_URL, schema, ...timeouts });
      const injected = createPostgresRepository({ dataSource, schema });
      // Created before the outage but first used during it: its pool is opened only afterwards.
      const late = createPostgresRepository({ url: POSTGRES_URL, schema, ...timeouts });
      const repositories: Array<[string, PostgresRepository]> = [
        ['url', owned],
        ['dataSource', injected],
        ['first used during the outage', late],
      ];
      try {
        await owned.migrate();
        const first = await owned.save(makeSnapshot(), { expectedVersion: null });
        expect(await injected.get(first.sessionId)).toMatchObject({ version: 1 });

        try {
          cluster('stop');
          expect(isReady()).toBe(false);
          for (const [label, repository] of repositories) {
            const calls: Array<[string, () => Promise<unknown>]> = [
              ['get', () => repository.get(first.sessionId)],
              ['save', () => repository.save(nextVersion(first), { expectedVersion: 1 })],
              ['list', () => repository.list({ userId: first.userId as string })],
              ['delete', () => repository.delete(randomId())],
              ['migrate', () => repository.migrate()],
            ];
            for (const [name, call] of calls) {
              const started = Date.now();
              const error = await failure(call);
              const elapsed = Date.now() - started;
              expect(error.code, `${label} ${name}: ${error.message}`).toBe('STORAGE_UNAVAILABLE');
              expect(isRetryableError(error)).toBe(true);
              expect(error.cause, `${label} ${name} keeps the driver error`).toBeDefined();
              expect(elapsed, `${label} ${name} took ${elapsed} ms`).toBeLessThan(BOUND_MS);
            }
          }
        } finally {
          await ensureServerRunning();
        }

        expect(await owned.get(first.sessionId)).toMatchObject({ version: 1 });
        const second = await injected.save(nextVersion(first), { expectedVersion: 1 });
        expect(await late.get(first.sessionId)).toMatchObject({
          version: 2,
          summary: second.summary,
        });
        const third = await late.save(nextVersion(second), { expectedVersion: 2 });
        const page = await owned.list({ userId: first.userId as string });
        expect(page.items.map((item) => item.version)).toEqual([third.version]);
      } finally {
        await ensureServerRunning();
        for (const [, repository] of repositories) await repository.close();
        if (dataSource.isInitialized) await dataSource.destroy();
        await dropSchema(schema);
      }
    });
  },
);
