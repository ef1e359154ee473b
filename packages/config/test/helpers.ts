import { randomBytes } from 'node:crypto';
import type { SessionContext } from '@ctx/core';

/** The PostgreSQL server the service-backed tests use. */
export const POSTGRES_URL =
  process.env.CTX_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The Redis server the service-backed tests use. */
export const REDIS_URL = process.env.CTX_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The MySQL or MariaDB server the service-backed tests use. */
export const MYSQL_URL = process.env.CTX_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** A random lower-case identifier, so suites can share one server. */
export function randomName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** Appends a query string to a URL that may already have one. */
export function withQuery(url: string, query: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${query}`;
}

/** A first-version snapshot with every field set. */
export function sampleSnapshot(overrides: Partial<SessionContext> = {}): SessionContext {
  const now = new Date(Math.floor(Date.now() / 1000) * 1000 + 123);
  return {
    sessionId: randomName('session'),
    userId: 'user-ünï',
    summary: 'Designing a REST API for a todo app; chose PostgreSQL. ✓',
    goal: 'Ship the API',
    plan: ['Define endpoints', 'Write tests'],
    progress: ['Define endpoints'],
    createdAt: now,
    updatedAt: now,
    version: 1,
    fields: null,
    ...overrides,
  };
}
