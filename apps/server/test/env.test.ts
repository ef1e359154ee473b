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
      auth: undefined,
      rateLimitPerMinute: 600,
      rateLimitBurst: undefined,
      corsOrigins: [],
      sessionSecret: undefined,
      cookieSecure: 'auto',
    });
  });

  it('reads every variable, treating empty values as unset', () => {
    const settings = readServerSettings({
      CTX_STORE_URL: 'postgres://root@127.0.0.1/test?schema=ctx',
      HOST: '0.0.0.0',
      CTX_AUTH_FILE: '/etc/ctx/tokens.json',
      CTX_RATE_LIMIT: '120',
      CTX_RATE_LIMIT_BURST: '10',
      CTX_CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
      CTX_SESSION_SECRET: 's'.repeat(32),
      CTX_COOKIE_SECURE: '1',
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
      auth: { file: '/etc/ctx/tokens.json' },
      rateLimitPerMinute: 120,
      rateLimitBurst: 10,
      corsOrigins: ['https://app.example.com', 'http://localhost:5173'],
      sessionSecret: 's'.repeat(32),
      cookieSecure: true,
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

  it('refuses a non-loopback HOST without authentication unless CTX_AUTH=none says so', () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10', 'ctx.internal']) {
      expect(() => readServerSettings({ HOST: host })).toThrow(
        /HOST=.*reachable from other machines.*CTX_AUTH_FILE.*CTX_AUTH=none/,
      );
    }
    for (const host of ['127.0.0.1', '127.0.0.53', 'localhost', '::1', '[::1]']) {
      expect(readServerSettings({ HOST: host }).auth).toBeUndefined();
    }
    expect(readServerSettings({ HOST: '0.0.0.0', CTX_AUTH: 'none' }).auth).toBe('none');
    expect(readServerSettings({ HOST: '0.0.0.0', CTX_AUTH_FILE: '/t.json' }).auth).toEqual({
      file: '/t.json',
    });
  });

  it('rejects contradicting or malformed auth, CORS and cookie settings', () => {
    let thrown: unknown;
    try {
      readServerSettings({
        CTX_AUTH: 'none',
        CTX_AUTH_FILE: '/t.json',
        CTX_CORS_ORIGINS: 'https://ok.example.com,*,https://x.example.com/path',
        CTX_SESSION_SECRET: 'short',
        CTX_COOKIE_SECURE: 'sometimes',
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({
      code: 'INVALID_CONFIG',
      issues: [
        { path: 'CTX_AUTH', message: expect.stringContaining('contradict') },
        { path: 'CTX_CORS_ORIGINS', message: expect.stringContaining('"*"') },
        { path: 'CTX_CORS_ORIGINS', message: expect.stringContaining('/path') },
        { path: 'CTX_SESSION_SECRET' },
        { path: 'CTX_COOKIE_SECURE' },
      ],
    });
    expect(() => readServerSettings({ CTX_AUTH: 'basic' })).toThrow(/CTX_AUTH: expected "none"/);
  });
});
