import type { SessionContext } from '../src/index.js';

export function snapshot(overrides: Partial<SessionContext> = {}): SessionContext {
  const at = new Date('2026-01-02T03:04:05.678Z');
  return {
    sessionId: 's-1',
    userId: null,
    summary: '',
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
