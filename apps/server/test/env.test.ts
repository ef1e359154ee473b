import { describe, expect, it } from 'vitest';
import { readServerSettings } from '../src/env.js';

describe('readServerSettings', () => {
  it('applies the documented defaults to an empty environment', () => {
    expect(readServerSettings({})).toEqual({
      storeUrl: 'sqlite:./data/ctx.db',
      host: '127.0.0.1',
      port: 8787,
      planning: false,
      inspector: true,
      instructions: undefined,
      maxConflictRetries: 3,
      shutdownTimeoutMs: 30_000,
      maxBodyBytes: 16 * 1024 * 1024,
      drainIntervalMs: 5000,
      drainOlderThanMs: 10_000,
    });
  });

  it('reads every variable, treating empty values as unset', () => {
    const settings = readServerSettings({
      CTX_STORE_URL: 'postgres://root@127.0.0.1/test?schema=ctx',
      HOST: '0.0.0.0',
      PORT: '0',
      CTX_PLANNING: 'true',
      CTX_INSPECTOR: 'off',
      CTX_INSTRUCTIONS: 'Keep ticket numbers.',
      CTX_MAX_CONFLICT_RETRIES: '8',
      CTX_SHUTDOWN_TIMEOUT_MS: '5000',
      CTX_MAX_BODY_BYTES: '',
      CTX_DRAIN_INTERVAL_MS: '0',
      CTX_DRAIN_OLDER_THAN_MS: '250',
    });
    expect(settings).toMatchObject({
      storeUrl: 'postgres://root@127.0.0.1/test?schema=ctx',
      host: '0.0.0.0',
      port: 0,
      planning: true,
      inspector: false,
      instructions: 'Keep ticket numbers.',
      maxConflictRetries: 8,
      shutdownTimeoutMs: 5000,
      maxBodyBytes: 16 * 1024 * 1024,
      drainIntervalMs: 0,
      drainOlderThanMs: 250,
    });
  });

  it('rejects bad values with INVALID_CONFIG naming each variable', () => {
    let thrown: unknown;
    try {
      readServerSettings({
        PORT: '80a',
        CTX_PLANNING: 'maybe',
        CTX_MAX_CONFLICT_RETRIES: '-1',
        CTX_DRAIN_INTERVAL_MS: '5s',
        CTX_DRAIN_OLDER_THAN_MS: '-10',
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({
      code: 'INVALID_CONFIG',
      issues: [
        { path: 'PORT', message: expect.stringContaining('"80a"') },
        { path: 'CTX_PLANNING', message: expect.stringContaining('"maybe"') },
        { path: 'CTX_MAX_CONFLICT_RETRIES', message: expect.stringContaining('0 to 100') },
        { path: 'CTX_DRAIN_INTERVAL_MS', message: expect.stringContaining('"5s"') },
        { path: 'CTX_DRAIN_OLDER_THAN_MS', message: expect.stringContaining('"-10"') },
      ],
    });
    expect((thrown as Error).message).toMatch(/PORT.*CTX_PLANNING.*CTX_MAX_CONFLICT_RETRIES/);
  });
});
