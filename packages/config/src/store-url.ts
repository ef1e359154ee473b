import { LIMITS, ValidationError, type ValidationIssue } from '@ctx/core';
import {
  findStoreScheme,
  listStoreSchemes,
  type StoreScheme,
  type StoreUrlParameter,
} from './store-scheme-registry.js';

/** The URL schemes built into {@link parseStoreUrl}; see `listStoreSchemes()` for all registered. */
export const STORE_URL_SCHEMES = [
  'memory',
  'sqlite',
  'postgres',
  'postgresql',
  'redis',
  'rediss',
  'mysql',
  'mariadb',
] as const;

/** One of {@link STORE_URL_SCHEMES}. */
export type StoreUrlScheme = (typeof STORE_URL_SCHEMES)[number];

/**
 * Where each kind of store lives, as {@link parseStoreUrl} reports it next to `kind`. A backend
 * added with `registerStoreScheme` declares its kind here (declaration merging), which types its
 * entry and the results of {@link parseStoreUrl}.
 *
 * @example
 * ```ts
 * declare module '@ctx/config' {
 *   interface StoreLocations {
 *     mongo: { url: string };
 *   }
 * }
 * ```
 */
export interface StoreLocations {
  /** `memory:`: the in-process reference repository; nothing survives the process. */
  memory: Record<never, never>;
  /** `sqlite:`: a SQLite file (`./data/ctx.db`, `/abs/path.db`) or `':memory:'`. */
  sqlite: { filename: string };
  /**
   * `postgres://`, `postgresql://`: the connection string without the ctx parameters (driver
   * parameters such as `sslmode` stay in it).
   */
  postgres: { url: string };
  /** `redis://`, `rediss://` (TLS): the URL without the ctx parameters. */
  redis: { url: string };
  /**
   * `mysql://`, `mariadb://`: the URL without the ctx parameters (driver parameters such as
   * `charset` stay in it).
   */
  mysql: { url: string };
}

/** Which backend a store URL names: a key of {@link StoreLocations}. */
export type StoreKind = keyof StoreLocations;

/** A store URL's backend and its location, one variant per {@link StoreKind}. */
export type StoreUrl = { [Kind in StoreKind]: { kind: Kind } & StoreLocations[Kind] }[StoreKind];

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
   * `?tombstones=<duration>`: how long a deleted or expired session's id keeps its last version,
   * so a stale writer can never write into a session re-created under that id (the repositories'
   * `tombstoneRetentionMs`). Same duration syntax as `ttl`.
   * @example 'postgres://localhost/app?tombstones=30d'
   */
  tombstoneRetentionMs?: number;
  /**
   * `?table=<name>` (SQLite, PostgreSQL, MySQL): the session table. The adapter validates the
   * name.
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

/** A store URL resolved against the registry: its entry, location and URL options. */
export interface ResolvedStoreUrl {
  scheme: StoreScheme;
  location: StoreLocations[StoreKind];
  options: StoreUrlOptions;
}

type ParameterName = 'ttl' | 'history' | 'tombstones' | StoreUrlParameter;

const COMMON_PARAMETERS: readonly ParameterName[] = ['ttl', 'history', 'tombstones'];
const ALL_PARAMETERS: readonly ParameterName[] = [
  ...COMMON_PARAMETERS,
  'table',
  'schema',
  'prefix',
];

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

function invalid(url: string, issues: ValidationIssue[]): ValidationError {
  const detail = issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
  return new ValidationError(
    'INVALID_CONFIG',
    `Invalid store URL "${redactStoreUrl(url)}": ${detail}`,
    { issues },
  );
}

function registeredSchemes(): string {
  return listStoreSchemes()
    .flatMap((entry) => entry.schemes)
    .join(', ');
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

function decodeParameter(text: string): string | undefined {
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

function readDuration(
  name: 'ttl' | 'tombstones',
  value: string,
  issues: ValidationIssue[],
): number | undefined {
  const ms = parseDuration(value);
  if (ms === undefined) {
    issues.push({
      path: name,
      message: `"${value}" is not a positive duration such as 3600, 3600s, 90m, 24h, 7d or 500ms (a bare number is seconds)`,
    });
  }
  return ms;
}

/**
 * Reads the ctx parameters out of the query pairs. Pairs that are not ctx parameters are returned
 * untouched in `passthrough` when the backend's driver takes its own, and are an issue otherwise.
 */
function readParameters(
  scheme: StoreScheme,
  pairs: string[],
): { options: StoreUrlOptions; passthrough: string[]; issues: ValidationIssue[] } {
  const { kind } = scheme;
  const allowed: readonly ParameterName[] = [...COMMON_PARAMETERS, ...(scheme.parameters ?? [])];
  const options: StoreUrlOptions = {};
  const passthrough: string[] = [];
  const seen = new Set<string>();
  const issues: ValidationIssue[] = [];
  for (const pair of pairs) {
    const separator = pair.indexOf('=');
    const rawKey = separator === -1 ? pair : pair.slice(0, separator);
    const key = decodeParameter(rawKey) ?? rawKey;
    const value = decodeParameter(separator === -1 ? '' : pair.slice(separator + 1));
    if (!(ALL_PARAMETERS as readonly string[]).includes(key)) {
      if (scheme.driverParameters) passthrough.push(pair);
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
        const ttlMs = readDuration(name, value, issues);
        if (ttlMs !== undefined) options.ttlMs = ttlMs;
        break;
      }
      case 'tombstones': {
        const retentionMs = readDuration(name, value, issues);
        if (retentionMs !== undefined) options.tombstoneRetentionMs = retentionMs;
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
  return { options, passthrough, issues };
}

/**
 * Finds the registered backend of a store URL and reads its location and ctx parameters. Throws
 * `INVALID_CONFIG` like {@link parseStoreUrl}.
 */
export function resolveStoreUrl(url: string): ResolvedStoreUrl {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Missing store URL: pass a URL such as sqlite:./data/ctx.db. Supported schemes: ${registeredSchemes()}`,
      { issues: [{ path: 'url', message: 'empty' }] },
    );
  }
  const trimmed = url.trim();
  const schemeMatch = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(trimmed);
  const name = schemeMatch?.[1]?.toLowerCase();
  const scheme = name === undefined ? undefined : findStoreScheme(name);
  if (name === undefined || scheme === undefined) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Unsupported store URL "${redactStoreUrl(trimmed)}": ${name ? `no backend is registered for "${name}:"` : 'it has no scheme'}. Supported schemes: ${registeredSchemes()} (e.g. sqlite:./data/ctx.db)`,
      { issues: [{ path: 'scheme', message: name ? `unknown scheme "${name}"` : 'no scheme' }] },
    );
  }
  const { base, pairs } = splitQuery(trimmed);
  const { options, passthrough, issues } = readParameters(scheme, pairs);
  // The location is checked first: a URL without a host or a file name is the bigger mistake.
  const location = scheme.parse({
    scheme: name,
    rest: base.slice(name.length + 1),
    url: passthrough.length > 0 ? `${base}?${passthrough.join('&')}` : base,
    invalid: (path, message) => invalid(trimmed, [{ path, message }]),
  });
  if (issues.length > 0) throw invalid(trimmed, issues);
  return { scheme, location, options };
}

/**
 * Parses a store URL into the backend it names and the repository options in its query string.
 * Pure: it opens nothing. Throws a `ValidationError` with code `INVALID_CONFIG` (listing every
 * problem, and the registered schemes when the scheme is unknown) on anything it cannot use.
 *
 * Built-in URL forms (more with `registerStoreScheme`):
 * - `memory:`
 * - `sqlite:./data/ctx.db`, `sqlite:relative.db`, `sqlite:///abs/path.db`, `sqlite::memory:`
 *   (after `sqlite:` an optional `//` is dropped and the rest, percent-decoded, is the file name)
 * - `postgres://user:password@host:5432/db`, `postgresql://…` (driver parameters such as
 *   `?sslmode=require` are kept in `url`)
 * - `redis://[:password@]host:6379[/db]`, `rediss://…` (TLS)
 * - `mysql://user:password@host:3306/db`, `mariadb://…` (driver parameters are kept in `url`)
 *
 * Parameters (see {@link StoreUrlOptions}): `ttl`, `history`, `tombstones` everywhere; `table` for
 * SQLite, PostgreSQL and MySQL; `schema` for PostgreSQL; `prefix` for Redis.
 *
 * @example
 * ```ts
 * parseStoreUrl('sqlite:./data/ctx.db?ttl=7d&history=5');
 * // { kind: 'sqlite', filename: './data/ctx.db', options: { ttlMs: 604800000, historyLimit: 5 } }
 * ```
 */
export function parseStoreUrl(url: string): ParsedStoreUrl {
  const { scheme, location, options } = resolveStoreUrl(url);
  return { ...location, kind: scheme.kind, options } as ParsedStoreUrl;
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
