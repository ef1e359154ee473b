import { type ContextRepository, ValidationError } from '@ctx/core';
import { BUILT_IN_STORE_SCHEMES } from './built-in-store-schemes.js';
import type { StoreKind, StoreLocations, StoreUrlOptions } from './store-url.js';

/**
 * Backend-specific query parameters a {@link StoreScheme} can take, besides the ones every store
 * URL takes (`ttl`, `history`, `tombstones`): `table` → `tableName`, `schema` → `schema`,
 * `prefix` → `keyPrefix` in {@link StoreUrlOptions}.
 */
export type StoreUrlParameter = 'table' | 'schema' | 'prefix';

/** A store URL cut into the pieces a {@link StoreScheme}'s `parse` reads. */
export interface StoreUrlParts {
  /** The scheme, lower-case, without the colon: `'mariadb'`. */
  readonly scheme: string;
  /**
   * What follows `<scheme>:` up to the query string, as written (not percent-decoded):
   * `'//app:pw@db:3306/ctx'` for `mysql://app:pw@db:3306/ctx?ttl=1d`, `'./data/ctx.db'` for
   * `sqlite:./data/ctx.db`.
   */
  readonly rest: string;
  /**
   * The URL without ctx's parameters, as written otherwise: what a driver is handed. Query
   * parameters that are not ctx's stay in it when the scheme takes `driverParameters`.
   * @example 'postgres://app:pw@db:5432/ctx?sslmode=require'
   */
  readonly url: string;
  /**
   * The `INVALID_CONFIG` error for this URL, its password redacted, with one issue:
   * `throw parts.invalid('url', 'expected mysql://user:password@host:3306/database')`.
   */
  invalid(path: string, message: string): ValidationError;
}

/**
 * What a {@link StoreScheme}'s `create` gets: the parameters read from the URL, completed with the
 * options of `createRepositoryFromUrl` (the URL wins for `ttlMs`, `historyLimit` and
 * `tombstoneRetentionMs`). Pass the common ones to the adapter under the same names.
 */
export interface StoreSchemeOptions extends StoreUrlOptions {
  /** Create or upgrade the schema on first use (`createRepositoryFromUrl`'s `migrate`). */
  migrate: boolean;
  /** The turn log's bound of pending turns per session, when the caller gave one. */
  maxPendingTurns?: number;
  /** How long to wait for a connection, in milliseconds, when the caller gave it. */
  connectTimeoutMs?: number;
}

/**
 * One backend of the store URL registry: the URL schemes it answers, how to read its location out
 * of the URL, and how to load its adapter package and create the repository. Built in: `memory`,
 * `sqlite`, `postgres` (`postgres`, `postgresql`), `redis` (`redis`, `rediss`) and `mysql`
 * (`mysql`, `mariadb`). Another backend joins with {@link registerStoreScheme}.
 *
 * `parseStoreUrl` calls only `parse`, which must be pure; `createRepositoryFromUrl` then calls
 * `load` (so the adapter package is imported only when its scheme is used, and a missing one fails
 * with `INVALID_CONFIG` naming `install`) and `create`.
 *
 * @typeParam Kind - the backend's name, a key of {@link StoreLocations}.
 * @typeParam Module - what `load` resolves to, usually the adapter package's namespace.
 */
export interface StoreScheme<Kind extends StoreKind = StoreKind, Module = unknown> {
  /** The backend's name, reported as `kind` by `parseStoreUrl`. */
  readonly kind: Kind;
  /**
   * The URL schemes it answers, lower-case, without the colon; the first is the main one.
   * @example ['mysql', 'mariadb']
   */
  readonly schemes: readonly string[];
  /**
   * How a URL of this backend looks, for messages.
   * @example 'mysql://user:password@host:3306/database'
   */
  readonly form: string;
  /**
   * Backend-specific ctx parameters it takes, besides `ttl`, `history` and `tombstones`.
   * @default []
   */
  readonly parameters?: readonly StoreUrlParameter[];
  /**
   * Whether query parameters that are not ctx's belong to the driver (they stay in
   * {@link StoreUrlParts.url}) rather than being an error.
   * @default false
   */
  readonly driverParameters?: boolean;
  /**
   * The package holding the adapter, named when it cannot be loaded.
   * @example '@ctx/store-mysql'
   */
  readonly packageName: string;
  /**
   * What to install when it is missing, the adapter and its driver.
   * @example '@ctx/store-mysql mysql2'
   */
  readonly install: string;
  /**
   * Reads the backend's location out of the URL; throws `parts.invalid(…)` for a URL it cannot
   * use. Pure: opens nothing. Its fields are reported by `parseStoreUrl` next to `kind` and
   * `options` (so it must not use those two names).
   */
  parse(parts: StoreUrlParts): StoreLocations[Kind];
  /**
   * Imports the adapter package.
   * @example () => import('@ctx/store-mysql')
   */
  load(): Promise<Module>;
  /** Creates the repository from the loaded package, the location and the options. */
  create(
    module: Module,
    location: StoreLocations[Kind],
    options: StoreSchemeOptions,
  ): ContextRepository | Promise<ContextRepository>;
}

const SCHEME_NAME = /^[a-z][a-z0-9+.-]*$/;
const PARAMETERS: readonly StoreUrlParameter[] = ['table', 'schema', 'prefix'];

const registered: StoreScheme[] = [];

function invalidScheme(path: string, message: string): ValidationError {
  return new ValidationError('INVALID_CONFIG', `Invalid store scheme entry: ${path} ${message}`, {
    issues: [{ path, message }],
  });
}

function add(entry: StoreScheme): void {
  if (typeof entry !== 'object' || entry === null) {
    throw invalidScheme('(root)', 'must be an object');
  }
  if (typeof entry.kind !== 'string' || entry.kind.trim() === '') {
    throw invalidScheme('kind', 'must be a non-empty string');
  }
  if (!Array.isArray(entry.schemes) || entry.schemes.length === 0) {
    throw invalidScheme('schemes', 'must list at least one scheme');
  }
  for (const scheme of entry.schemes) {
    if (typeof scheme !== 'string' || !SCHEME_NAME.test(scheme)) {
      throw invalidScheme(
        'schemes',
        `has ${JSON.stringify(scheme)}: write schemes lower-case, without the colon (e.g. "mysql")`,
      );
    }
    const owner = findStoreScheme(scheme);
    if (owner) {
      throw invalidScheme('schemes', `has "${scheme}", already registered by "${owner.kind}"`);
    }
  }
  if (new Set(entry.schemes).size !== entry.schemes.length) {
    throw invalidScheme('schemes', 'lists a scheme twice');
  }
  if (registered.some((other) => other.kind === entry.kind)) {
    throw invalidScheme('kind', `"${entry.kind}" is already registered`);
  }
  for (const name of ['form', 'packageName', 'install'] as const) {
    if (typeof entry[name] !== 'string' || entry[name].trim() === '') {
      throw invalidScheme(name, 'must be a non-empty string');
    }
  }
  for (const name of ['parse', 'load', 'create'] as const) {
    if (typeof entry[name] !== 'function') throw invalidScheme(name, 'must be a function');
  }
  const unknown = (entry.parameters ?? []).find((name) => !PARAMETERS.includes(name));
  if (unknown !== undefined) {
    throw invalidScheme('parameters', `has "${unknown}"; use ${PARAMETERS.join(', ')}`);
  }
  registered.push(entry);
}

for (const entry of BUILT_IN_STORE_SCHEMES) add(entry);

/**
 * Adds a backend to the store URL registry, so `parseStoreUrl` and `createRepositoryFromUrl` (and
 * everything built on them, such as the `ctx` command) accept its schemes. Call it once at startup,
 * before the URL is read. Returns a function that removes the entry again (for tests).
 *
 * Declare the backend's location in {@link StoreLocations} (declaration merging) so the entry and
 * the results of `parseStoreUrl` are typed. Throws `INVALID_CONFIG` for a malformed entry, or a
 * kind or scheme that is already registered (built-in ones included).
 *
 * @example
 * ```ts
 * import { registerStoreScheme } from '@ctx/config';
 *
 * declare module '@ctx/config' {
 *   interface StoreLocations {
 *     mongo: { url: string };
 *   }
 * }
 *
 * registerStoreScheme({
 *   kind: 'mongo',
 *   schemes: ['mongodb', 'mongodb+srv'],
 *   form: 'mongodb://user:password@host:27017/database',
 *   driverParameters: true,
 *   packageName: 'ctx-store-mongo',
 *   install: 'ctx-store-mongo mongodb',
 *   parse: (parts) => ({ url: parts.url }),
 *   load: () => import('ctx-store-mongo'),
 *   create: (adapter, location, options) =>
 *     adapter.createMongoRepository({
 *       url: location.url,
 *       ttlMs: options.ttlMs,
 *       historyLimit: options.historyLimit,
 *       tombstoneRetentionMs: options.tombstoneRetentionMs,
 *       migrate: options.migrate,
 *     }),
 * });
 * ```
 */
export function registerStoreScheme<Kind extends StoreKind, Module>(
  entry: StoreScheme<Kind, Module>,
): () => void {
  const stored = entry as unknown as StoreScheme;
  add(stored);
  return () => {
    const index = registered.indexOf(stored);
    if (index !== -1) registered.splice(index, 1);
  };
}

/** The registered backends, built-in ones first, then in registration order. */
export function listStoreSchemes(): readonly StoreScheme[] {
  return [...registered];
}

/** The backend registered for `scheme` (lower-case, without the colon), if any. */
export function findStoreScheme(scheme: string): StoreScheme | undefined {
  return registered.find((entry) => entry.schemes.includes(scheme));
}
