import { ValidationError, type ValidationIssue } from '@ctx/core';
import { isLoopbackHost } from './auth.js';

/** Settings of the service, read from the environment by {@link readServerSettings}. */
export interface ServerSettings {
  /** `CTX_STORE_URL`: where sessions are stored. @default 'sqlite:./data/ctx.db' */
  storeUrl: string;
  /** `HOST`: the interface to listen on. @default '127.0.0.1' */
  host: string;
  /** `PORT`: the port to listen on; 0 picks a free one. @default 8787 */
  port: number;
  /** `CTX_PLANNING`: maintain goal, plan and completed steps. @default false */
  planning: boolean;
  /** `CTX_INSPECTOR`: serve the inspector page at `/`. @default true */
  inspector: boolean;
  /** `CTX_INSTRUCTIONS`: extra instructions for the extractor. */
  instructions: string | undefined;
  /** `CTX_MAX_CONFLICT_RETRIES`: re-extractions after a version conflict before answering 409. @default 3 */
  maxConflictRetries: number;
  /** `CTX_SHUTDOWN_TIMEOUT_MS`: longest graceful shutdown before a forced exit (code 1). @default 30000 */
  shutdownTimeoutMs: number;
  /** `CTX_MAX_BODY_BYTES`: largest accepted request body. @default 16777216 */
  maxBodyBytes: number;
  /**
   * `CTX_DRAIN_INTERVAL_MS`: pause between drains of turns other instances left pending; 0 runs no
   * drain loop. @default 5000
   */
  drainIntervalMs: number;
  /**
   * `CTX_DRAIN_OLDER_THAN_MS`: a drain takes only sessions whose oldest pending turn is at least
   * this old (fresher ones are being folded by the instance that recorded them). @default 10000
   */
  drainOlderThanMs: number;
  /**
   * `CTX_AUTH_FILE` (a path: bearer tokens required) or `CTX_AUTH=none` (`'none'`: no
   * authentication, on purpose). Neither: no authentication, allowed only on a loopback `HOST`.
   */
  auth: { file: string } | 'none' | undefined;
  /** `CTX_RATE_LIMIT`: requests per minute per principal; 0 turns limiting off. @default 600 */
  rateLimitPerMinute: number;
  /** `CTX_RATE_LIMIT_BURST`: requests a principal may send at once. @default the per-minute rate */
  rateLimitBurst: number | undefined;
  /** `CTX_CORS_ORIGINS`: comma-separated origins allowed to call the API from a browser. @default none */
  corsOrigins: string[];
  /** `CTX_SESSION_SECRET`: HMAC key of the inspector's sign-in cookie (32+ characters). @default random per process */
  sessionSecret: string | undefined;
  /** `CTX_COOKIE_SECURE`: the cookie's `Secure` attribute: `auto` (over HTTPS), or on/off. @default 'auto' */
  cookieSecure: boolean | 'auto';
}

type Environment = Record<string, string | undefined>;

const DEFAULTS = {
  storeUrl: 'sqlite:./data/ctx.db',
  host: '127.0.0.1',
  port: 8787,
  maxConflictRetries: 3,
  shutdownTimeoutMs: 30_000,
  maxBodyBytes: 16 * 1024 * 1024,
  drainIntervalMs: 5000,
  drainOlderThanMs: 10_000,
  rateLimitPerMinute: 600,
} as const;

/**
 * Reads and validates the service's settings (`CTX_MODEL` and the provider keys are read by
 * `createExtractorFromEnv` from `@ctx/config`). Empty values count as unset. Throws
 * `INVALID_CONFIG` listing every bad variable.
 *
 * @example
 * ```ts
 * const settings = readServerSettings(process.env);
 * ```
 */
export function readServerSettings(env: Environment = process.env): ServerSettings {
  const issues: ValidationIssue[] = [];
  const value = (name: string) => {
    const text = env[name]?.trim();
    return text ? text : undefined;
  };
  const integer = (name: string, fallback: number, min: number, max: number) => {
    const text = value(name);
    if (text === undefined) return fallback;
    const number = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(number) || number < min || number > max) {
      issues.push({
        path: name,
        message: `expected an integer from ${min} to ${max}, got "${text}"`,
      });
      return fallback;
    }
    return number;
  };
  const flag = (name: string, fallback: boolean) => {
    const text = value(name)?.toLowerCase();
    if (text === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(text)) return true;
    if (['0', 'false', 'no', 'off'].includes(text)) return false;
    issues.push({
      path: name,
      message: `expected 1/0, true/false, yes/no or on/off, got "${text}"`,
    });
    return fallback;
  };

  const settings: ServerSettings = {
    storeUrl: value('CTX_STORE_URL') ?? DEFAULTS.storeUrl,
    host: value('HOST') ?? DEFAULTS.host,
    port: integer('PORT', DEFAULTS.port, 0, 65_535),
    planning: flag('CTX_PLANNING', false),
    inspector: flag('CTX_INSPECTOR', true),
    instructions: value('CTX_INSTRUCTIONS'),
    maxConflictRetries: integer('CTX_MAX_CONFLICT_RETRIES', DEFAULTS.maxConflictRetries, 0, 100),
    shutdownTimeoutMs: integer(
      'CTX_SHUTDOWN_TIMEOUT_MS',
      DEFAULTS.shutdownTimeoutMs,
      100,
      3_600_000,
    ),
    maxBodyBytes: integer('CTX_MAX_BODY_BYTES', DEFAULTS.maxBodyBytes, 1024, 1024 ** 3),
    drainIntervalMs: integer('CTX_DRAIN_INTERVAL_MS', DEFAULTS.drainIntervalMs, 0, 86_400_000),
    drainOlderThanMs: integer('CTX_DRAIN_OLDER_THAN_MS', DEFAULTS.drainOlderThanMs, 0, 604_800_000),
    auth: undefined,
    rateLimitPerMinute: integer('CTX_RATE_LIMIT', DEFAULTS.rateLimitPerMinute, 0, 1_000_000),
    rateLimitBurst:
      value('CTX_RATE_LIMIT_BURST') === undefined
        ? undefined
        : integer('CTX_RATE_LIMIT_BURST', 1, 1, 1_000_000),
    corsOrigins: [],
    sessionSecret: value('CTX_SESSION_SECRET'),
    cookieSecure: 'auto',
  };

  const authFile = value('CTX_AUTH_FILE');
  const authMode = value('CTX_AUTH');
  if (authMode !== undefined && authMode !== 'none') {
    issues.push({
      path: 'CTX_AUTH',
      message: `expected "none" (no authentication, on purpose), got "${authMode}"; for tokens set CTX_AUTH_FILE`,
    });
  } else if (authMode === 'none' && authFile !== undefined) {
    issues.push({
      path: 'CTX_AUTH',
      message: 'CTX_AUTH=none and CTX_AUTH_FILE contradict each other: set one of them',
    });
  }
  settings.auth =
    authFile !== undefined ? { file: authFile } : authMode === 'none' ? 'none' : undefined;
  if (settings.auth === undefined && !isLoopbackHost(settings.host)) {
    issues.push({
      path: 'HOST',
      message: `HOST=${settings.host} is reachable from other machines, and no authentication is configured: set CTX_AUTH_FILE (bearer tokens), or CTX_AUTH=none to run without authentication on purpose`,
    });
  }

  const origins = value('CTX_CORS_ORIGINS');
  for (const origin of origins
    ?.split(',')
    .map((item) => item.trim())
    .filter(Boolean) ?? []) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {}
    if (parsed && /^https?:$/.test(parsed.protocol) && parsed.origin === origin) {
      settings.corsOrigins.push(origin);
    } else {
      issues.push({
        path: 'CTX_CORS_ORIGINS',
        message: `"${origin}" is not an origin: write scheme://host[:port], e.g. https://app.example.com`,
      });
    }
  }

  if (settings.sessionSecret !== undefined && settings.sessionSecret.length < 32) {
    issues.push({ path: 'CTX_SESSION_SECRET', message: 'must be at least 32 characters' });
  }
  const secure = value('CTX_COOKIE_SECURE')?.toLowerCase();
  if (secure !== undefined && secure !== 'auto')
    settings.cookieSecure = flag('CTX_COOKIE_SECURE', false);

  if (issues.length > 0) {
    throw invalidEnvironment(issues);
  }
  return settings;
}

function invalidEnvironment(issues: ValidationIssue[]): ValidationError {
  return new ValidationError(
    'INVALID_CONFIG',
    `Invalid environment: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`,
    { issues },
  );
}
