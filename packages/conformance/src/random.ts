import { randomUUID } from 'node:crypto';
import type { SessionContext } from '@ctx/core';

/**
 * A fresh id for one test: a readable label plus a random part, so that suites (and several runs
 * of one suite) can share one database, file or server without ever touching each other's rows.
 *
 * @example
 * ```ts
 * randomId('cas'); // "ctx-conformance-cas-3f0c9d0e4b7a4c21a5d8e2f1c0b9a877"
 * ```
 */
export function randomId(label = 'session'): string {
  return `ctx-conformance-${label}-${randomUUID().replaceAll('-', '')}`;
}

/** A random integer in `[min, max)`. */
export function randomInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min));
}

// Milliseconds between 2001 and 2030, with a random sub-second part so precision is really tested.
const EARLIEST = Date.UTC(2001, 0, 1);
const LATEST = Date.UTC(2030, 0, 1);

/** A random timestamp between 2001 and 2030 with a non-zero millisecond part. */
export function randomDate(): Date {
  const time = randomInt(EARLIEST, LATEST);
  return new Date(time - (time % 1000) + randomInt(1, 1000));
}

/**
 * A complete, valid snapshot with a random session id (version 1, summary mode), with `overrides`
 * applied on top.
 */
export function makeSnapshot(overrides: Partial<SessionContext> = {}): SessionContext {
  const createdAt = randomDate();
  return {
    sessionId: randomId(),
    userId: randomId('user'),
    summary:
      'The user is designing a REST API for a todo app; PATCH was chosen for partial updates.',
    goal: null,
    plan: null,
    progress: null,
    createdAt,
    updatedAt: new Date(createdAt.getTime() + randomInt(1, 86_400_000)),
    version: 1,
    fields: null,
    ...overrides,
  };
}

/**
 * The next version of `snapshot`, as a caller would write it after reading `snapshot`: version + 1,
 * `updatedAt` moved forward, `createdAt` kept.
 */
export function nextVersion(
  snapshot: SessionContext,
  overrides: Partial<SessionContext> = {},
): SessionContext {
  return {
    ...snapshot,
    plan: snapshot.plan ? [...snapshot.plan] : null,
    progress: snapshot.progress ? [...snapshot.progress] : null,
    version: snapshot.version + 1,
    updatedAt: new Date(snapshot.updatedAt.getTime() + randomInt(1, 60_000)),
    ...overrides,
  };
}

/** Awaits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
