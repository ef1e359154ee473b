import { LIMITS, ValidationError, type ValidationIssue } from '@ctx/core';

/** The URL schemes {@link parseStoreUrl} understands. */
export const STORE_URL_SCHEMES = [
  'memory',
  'sqlite',
  'postgres',
  'postgresql',
  'redis',
  'rediss',
] as const;

/** One of {@link STORE_URL_SCHEMES}. */
export type StoreUrlScheme = (typeof STORE_URL_SCHEMES)[number];

/** Which backend a store URL names. */
export type StoreKind = 'memory' | 'sqlite' | 'postgres' | 'redis';

/**
 * A parsed store URL: which backend, and where.
 *
 * - `memory`: the in-process reference repository (`memory:`); nothing survives the process.
 * - `sqlite`: a SQLite file (`sqlite:./data/ctx.db`, `sqlite:///abs/path.db`) or `':memory:'`.
 * - `postgres`: a PostgreSQL connection string, without the ctx parameters (driver parameters such
 *   as `sslmode` stay in it).
 * - `redis`: a `redis://` or `rediss://` URL, without the ctx parameters.
 */
export type StoreUrl =
  | { kind: 'memory' }
  | { kind: 'sqlite'; filename: string }
  | { kind: 'postgres'; url: string }
  | { kind: 'redis'; url: string };

/**
 * Repository options read from a store URL's query string. Only the ones present in the URL are
 * set.
 */
export interface StoreUrlOptions {
  /**
   * `?ttl=<duration>`: sessions expire this long after their last write. A whole number with an
   * optional unit, `ms`, `s`, `m`, `h` or `d`; a bare number is seconds (`ttl=3600` = `ttl=1h`).
   * @example 'redis://127.0.0.1:6379?ttl=7d'
   */
  ttlMs?: number;
  /**
   * `?history=<N>`: keep the last N versions of every session (0 keeps none).
   * @example 'sqlite:./data/ctx.db?history=10'
   */
  historyLimit?: number;
  /**
   * `?table=<name>` (SQLite, PostgreSQL): the session table. The adapter validates the name.
   * @example 'postgres://localhost/app?table=agent_contexts'
   */
  tableName?: string;
  /**
   * `?schema=<name>` (PostgreSQL): the schema holding the tables.
   * @example 'postgres://localhost/app?schema=ctx'
   */
  schema?: string;
  /**
   * `?prefix=<prefix>` (Redis): the key prefix, so several apps or tenants share one server.
   * @example 'redis://127.0.0.1:6379/0?prefix=support-bot'
   */
  keyPrefix?: string;
}

/** What {@link parseStoreUrl} returns: the backend and the options found in the query string. */
export type ParsedStoreUrl = StoreUrl & { options: StoreUrlOptions };

type ParameterName = 'ttl' | 'history' | 'table' | 'schema' | 'prefix';

const PARAMETERS_BY_KIND: Record<StoreKind, readonly ParameterName[]> = {
  memory: ['ttl', 'history'],
  sqlite: ['ttl', 'history', 'table'],
  postgres: ['ttl', 'history', 'table', 'schema'],
  redis: ['ttl', 'history', 'prefix'],
};
const ALL_PARAMETERS: readonly ParameterName[] = ['ttl', 'history', 'table', 'schema', 'prefix'];

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const SUPPORTED =
  'memory:, sqlite:<file>, postgres://… (or postgresql://…), redis://… (or rediss://…)';

function invalid(url: string, issues: ValidationIssue[]): ValidationError {
  const detail = issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
  return new ValidationError(
    'INVALID_CONFIG',
    `Invalid store URL "${redactStoreUrl(url)}": ${detail}`,
    { issues },
  );
}

/**
 * Parses a duration such as `3600`, `3600s`, `90m`, `24h`, `7d` or `500ms` into milliseconds (a
 * bare number is seconds). Returns `undefined` when the text is not such a duration.
 *
 * @example
 * ```ts
 * parseDuration('7d'); // 604_800_000
 * ```
 */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]) * (DURATION_UNITS[match[2] ?? 's'] ?? 1000);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** Splits `rest` at the first `?` into its base and the raw `key=value` pairs. */
function splitQuery(rest: string): { base: string; pairs: string[] } {
  const withoutFragment = rest.split('#', 1)[0] ?? '';
  const index = withoutFragment.indexOf('?');
  if (index === -1) return { base: withoutFragment, pairs: [] };
  return {
    base: withoutFragment.slice(0, index),
    pairs: withoutFragment
      .slice(index + 1)
      .split('&')
      .filter((pair) => pair !== ''),
  };
}

/**
 * Reads the ctx parameters out of the query pairs. Pairs that are not ctx parameters are returned
 * untouched in `passthrough` when the backend's driver takes its own (PostgreSQL, Redis), and are
 * an error otherwise.
 */
function readParameters(
  url: string,
  kind: StoreKind,
  pairs: string[],
  allowPassthrough: boolean,
): { options: StoreUrlOptions; passthrough: string[] } {
  const allowed = PARAMETERS_BY_KIND[kind];
  const options: StoreUrlOptions = {};
  const passthrough: string[] = [];
  const seen = new Set<string>();
  const issues: ValidationIssue[] = [];
  for (const pair of pairs) {
    const separator = pair.indexOf('=');
    const rawKey = separator === -1 ? pair : pair.slice(0, separator);
    const key = decode(rawKey) ?? rawKey;
    const value = decode(separator === -1 ? '' : pair.slice(separator + 1));
    if (!(ALL_PARAMETERS as readonly string[]).includes(key)) {
      if (allowPassthrough) passthrough.push(pair);
      else
        issues.push({
          path: key,
          message: `unknown parameter; ${kind} URLs take ${allowed.join(', ')}`,
        });
      continue;
    }
    const name = key as ParameterName;
    if (!allowed.includes(name)) {
      issues.push({
        path: name,
        message: `not a ${kind} parameter; ${kind} URLs take ${allowed.join(', ')}`,
      });
      continue;
    }
    if (seen.has(name)) {
      issues.push({ path: name, message: 'given more than once' });
      continue;
    }
    seen.add(name);
    if (value === undefined || value.trim() === '') {
      issues.push({ path: name, message: 'needs a value' });
      continue;
    }
    switch (name) {
      case 'ttl': {
        const ttlMs = parseDuration(value);
        if (ttlMs === undefined) {
          issues.push({
            path: 'ttl',
            message: `"${value}" is not a positive duration such as 3600, 3600s, 90m, 24h, 7d or 500ms (a bare number is seconds)`,
          });
        } else options.ttlMs = ttlMs;
        break;
      }
      case 'history': {
        const limit = /^\d+$/.test(value) ? Number(value) : Number.NaN;
        if (!(Number.isSafeInteger(limit) && limit <= LIMITS.historyMaxVersions)) {
          issues.push({
            path: 'history',
            message: `"${value}" is not a whole number from 0 to ${LIMITS.historyMaxVersions}`,
          });
        } else options.historyLimit = limit;
        break;
      }
      case 'table':
        options.tableName = value;
        break;
      case 'schema':
        options.schema = value;
        break;
      case 'prefix':
        options.keyPrefix = value;
        break;
    }
  }
  if (issues.length > 0) throw invalid(url, issues);
  return { options, passthrough };
}

/**
 * Parses a store URL into the backend it names and the repository options in its query string.
 * Pure: it opens nothing. Throws a `ValidationError` with code `INVALID_CONFIG` (listing every
 * problem, and the supported schemes when the scheme is unknown) on anything it cannot use.
 *
 * URL forms:
 * - `memory:`
 * - `sqlite:./data/ctx.db`, `sqlite:relative.db`, `sqlite:///abs/path.db`, `sqlite::memory:`
 *   (after `sqlite:` an optional `//` is dropped and the rest, percent-decoded, is the file name)
 * - `postgres://user:password@host:5432/db`, `postgresql://…` (driver parameters such as
 *   `?sslmode=require` are kept in `url`)
 * - `redis://[:password@]host:6379[/db]`, `rediss://…` (TLS)
 *
 * Parameters (see {@link StoreUrlOptions}): `ttl`, `history` everywhere; `table` for SQLite and
 * PostgreSQL; `schema` for PostgreSQL; `prefix` for Redis.
 *
 * @example
 * ```ts
 * parseStoreUrl('sqlite:./data/ctx.db?ttl=7d&history=5');
 * // { kind: 'sqlite', filename: './data/ctx.db', options: { ttlMs: 604800000, historyLimit: 5 } }
 * ```
 */
export function parseStoreUrl(url: string): ParsedStoreUrl {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Missing store URL: pass one of ${SUPPORTED}, e.g. sqlite:./data/ctx.db`,
      { issues: [{ path: 'url', message: 'empty' }] },
    );
  }
  const trimmed = url.trim();
  const schemeMatch = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(trimmed);
  const scheme = schemeMatch?.[1]?.toLowerCase();
  if (!scheme || !(STORE_URL_SCHEMES as readonly string[]).includes(scheme)) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Unsupported store URL "${redactStoreUrl(trimmed)}": use ${SUPPORTED}. Supported schemes: ${STORE_URL_SCHEMES.join(', ')}`,
      {
        issues: [{ path: 'scheme', message: scheme ? `unknown scheme "${scheme}"` : 'no scheme' }],
      },
    );
  }
  const rest = trimmed.slice(scheme.length + 1);

  switch (scheme as StoreUrlScheme) {
    case 'memory': {
      const { base, pairs } = splitQuery(rest);
      if (base !== '' && base !== '//') {
        throw invalid(trimmed, [
          { path: 'path', message: 'memory: takes no path (write memory: or memory:?ttl=1h)' },
        ]);
      }
      const { options } = readParameters(trimmed, 'memory', pairs, false);
      return { kind: 'memory', options };
    }
    case 'sqlite': {
      const { base, pairs } = splitQuery(rest);
      const path = base.startsWith('//') ? base.slice(2) : base;
      const filename = decode(path.replace(/\+/g, '%2B'));
      if (filename === undefined) {
        throw invalid(trimmed, [{ path: 'filename', message: 'malformed percent-encoding' }]);
      }
      if (filename.trim() === '') {
        throw invalid(trimmed, [
          {
            path: 'filename',
            message:
              'missing file name: write sqlite:./data/ctx.db, sqlite:///abs/path.db or sqlite::memory:',
          },
        ]);
      }
      const { options } = readParameters(trimmed, 'sqlite', pairs, false);
      return { kind: 'sqlite', filename, options };
    }
    case 'postgres':
    case 'postgresql':
    case 'redis':
    case 'rediss': {
      const kind: StoreKind = scheme.startsWith('redis') ? 'redis' : 'postgres';
      const { base, pairs } = splitQuery(trimmed);
      if (!URL.canParse(base) || !base.slice(scheme.length + 1).startsWith('//')) {
        throw invalid(trimmed, [
          {
            path: 'url',
            message:
              kind === 'redis'
                ? 'not a valid URL; expected redis://[user:password@]host[:port][/db]'
                : 'not a valid URL; expected postgres://[user[:password]@]host[:port]/database',
          },
        ]);
      }
      const { options, passthrough } = readParameters(trimmed, kind, pairs, true);
      const cleaned = passthrough.length > 0 ? `${base}?${passthrough.join('&')}` : base;
      return { kind, url: cleaned, options } as ParsedStoreUrl;
    }
  }
}

/**
 * The URL with its password (and any `password=` query parameter) replaced by `***`, for logs and
 * messages. Never throws; text it cannot parse is returned with anything that looks like
 * `user:password@` masked.
 *
 * @example
 * ```ts
 * redactStoreUrl('postgres://app:s3cret@db:5432/ctx'); // 'postgres://app:***@db:5432/ctx'
 * ```
 */
export function redactStoreUrl(url: string): string {
  if (typeof url !== 'string') return String(url);
  let redacted = url;
  const authorityStart = url.indexOf('://');
  if (authorityStart !== -1) {
    const start = authorityStart + 3;
    const end = url.slice(start).search(/[/?#]/);
    const authority = end === -1 ? url.slice(start) : url.slice(start, start + end);
    const at = authority.lastIndexOf('@');
    const colon = at === -1 ? -1 : authority.slice(0, at).indexOf(':');
    if (colon !== -1) {
      redacted = `${url.slice(0, start)}${authority.slice(0, colon + 1)}***${url.slice(start + at)}`;
    }
  }
  return redacted.replace(/([?&]password=)[^&#]*/gi, '$1***');
}
