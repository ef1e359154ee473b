import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SessionContext } from '@ctx/core';

const folders: string[] = [];

/** A fresh temporary folder, removed by {@link removeTempFolders}. */
export function tempFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'ctx-store-sqlite-'));
  folders.push(folder);
  return folder;
}

/** A path for a database file that does not exist yet. */
export function tempDatabasePath(name = 'ctx.db'): string {
  return join(tempFolder(), name);
}

export function removeTempFolders(): void {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
}

export function randomId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

/** A valid first-version snapshot with random ids; override any field. */
export function makeSnapshot(overrides: Partial<SessionContext> = {}): SessionContext {
  const time = new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 678));
  return {
    sessionId: randomId('session'),
    userId: randomId('user'),
    summary: 'Designing a REST API for a todo app.',
    goal: 'Ship the API',
    plan: ['Define endpoints', 'Pick methods'],
    progress: ['Define endpoints'],
    createdAt: time,
    updatedAt: time,
    version: 1,
    fields: null,
    ...overrides,
  };
}

/** The next version of `snapshot`, one millisecond later, with a new summary. */
export function nextVersion(snapshot: SessionContext, summary: string): SessionContext {
  return {
    ...snapshot,
    summary,
    updatedAt: new Date(snapshot.updatedAt.getTime() + 1),
    version: snapshot.version + 1,
  };
}

/** The rejection of `promise`, failing the test if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

/** Same for a synchronous call. */
export function thrownBy(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}
