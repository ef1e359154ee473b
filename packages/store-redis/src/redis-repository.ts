import {
  assertValidSave,
  assertValidSessionId,
  type ContextRepository,
  cloneSnapshot,
  LIMITS,
  type ListPage,
  type ListQuery,
  normalizeListQuery,
  type RepositoryCapabilities,
  type SaveOptions,
  type SessionContext,
  StorageError,
  toListPage,
  ValidationError,
  VersionConflictError,
} from '@ctx/core';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import {
  createOwnedClient,
  createReadyGate,
  describeTarget,
  redisClientOptions,
} from './redis-connection.js';
import { decodeDocument, encodeDocument, mismatch } from './redis-document.js';
import { toStorageError } from './redis-errors.js';
import {
  createRedisKeyLayout,
  DEFAULT_REDIS_KEY_PREFIX,
  encodeIndexMember,
  indexUpperBound,
  type RedisKeyLayout,
} from './redis-keys.js';
import {
  DELETE_SCRIPT,
  LIST_SCRIPT,
  PURGE_SCRIPT,
  type RedisClient,
  runScript,
  SAVE_SCRIPT,
} from './redis-scripts.js';

/** Options shared by both ways of creating a {@link createRedisRepository | Redis repository}. */
export interface RedisRepositoryCommonOptions {
  /**
   * Prefix of every key, used as the Redis Cluster hash tag: keys are `{<keyPrefix>}:…`. Several
   * repositories (tenants, environments) can share one server with different prefixes; on a
   * cluster, each prefix lives in one slot. 1–64 characters without braces, whitespace, control
   * characters or `*?[]\`.
   * @default 'ctx'
   */
  keyPrefix?: string;
  /**
   * Sessions expire this many milliseconds after their last write (native Redis expiry, refreshed
   * by every `save`). Expired sessions are invisible to `get`, `list` and `history`; `list` removes
   * their index entries as it meets them and `purgeExpired()` removes all of them. Enables the
   * `ttl` capability.
   * @default undefined (sessions never expire)
   */
  ttlMs?: number;
  /**
   * Keep the last N versions of every session (the current one included), readable through
   * `history()`. Enables the `history` capability. Give every repository writing to one prefix the
   * same value: a writer without history deletes the history of the sessions it writes.
   * @default 0 (no history)
   */
  historyLimit?: number;
  /**
   * How long a call waits for a ready connection (while the client connects or reconnects) before
   * it fails with `STORAGE_UNAVAILABLE`, in milliseconds. Applies to injected clients too. For a
   * client created from `url` it is also ioredis's `connectTimeout`.
   * @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * How long a client created from `url` waits for one reply before the call fails with
   * `STORAGE_UNAVAILABLE` (ioredis `commandTimeout`), in milliseconds. An injected client keeps its
   * own setting.
   * @default 5000
   */
  commandTimeoutMs?: number;
}

/** Connect to a URL; the repository owns this client and closes it in `close()`. */
export interface RedisRepositoryUrlOptions extends RedisRepositoryCommonOptions {
  /**
   * A `redis://` or `rediss://` (TLS) URL, with user, password and database number if needed.
   * @example 'redis://:secret@127.0.0.1:6379/0'
   */
  url: string;
  /**
   * More ioredis options for the client created from `url` (TLS settings, `connectionName`…).
   * They override the repository's defaults (see {@link redisClientOptions}).
   * @default undefined
   */
  redisOptions?: RedisOptions;
  client?: never;
}

/** Use an ioredis client you created (standalone or Cluster); the repository never closes it. */
export interface RedisRepositoryClientOptions extends RedisRepositoryCommonOptions {
  /**
   * An ioredis `Redis` or `Cluster` client. Its owner closes it (after closing the repository). Its
   * own offline-queue, retry and timeout settings stay in force; {@link redisClientOptions} gives
   * the settings the repository uses for clients it creates.
   */
  client: Redis | Cluster;
  url?: never;
  redisOptions?: never;
}

/** Options of {@link createRedisRepository}: a `url` or a `client`, plus common options. */
export type RedisRepositoryOptions = RedisRepositoryUrlOptions | RedisRepositoryClientOptions;

/** A {@link ContextRepository} stored in Redis. */
export interface RedisRepository extends ContextRepository {
  /** Which optional capabilities this repository has (from `ttlMs` and `historyLimit`). */
  readonly capabilities: RepositoryCapabilities;
  /** The key names this repository reads and writes (for `redis-cli` and tooling). */
  readonly keys: RedisKeyLayout;
  /** The ioredis client in use (created from `url` or injected). */
  readonly client: Redis | Cluster;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const MAX_TIMEOUT_MS = 2_147_483_647;
/** Index entries one list script call may examine, so a backlog of expired entries never blocks the server for long. */
const LIST_SCAN_BUDGET = 2_000;
const PURGE_BATCH = 500;

function invalidConfig(path: string, message: string): ValidationError {
  return new ValidationError(
    'INVALID_CONFIG',
    `Invalid Redis repository option ${path}: ${message}`,
    {
      issues: [{ path, message }],
    },
  );
}

interface ResolvedOptions {
  keys: RedisKeyLayout;
  ttlMs: number;
  historyLimit: number;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

function assertTimeout(path: string, value: unknown): asserts value is number {
  if (!(Number.isInteger(value) && (value as number) > 0 && (value as number) <= MAX_TIMEOUT_MS)) {
    throw invalidConfig(path, `expected an integer from 1 to ${MAX_TIMEOUT_MS} (milliseconds)`);
  }
}

function resolveOptions(options: RedisRepositoryOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalidConfig('(root)', 'pass { url } or { client }');
  }
  const hasUrl = options.url !== undefined;
  const hasClient = options.client !== undefined;
  if (hasUrl === hasClient) {
    throw invalidConfig(
      hasUrl ? 'url' : '(root)',
      'pass exactly one of url (a redis:// or rediss:// URL) and client (an ioredis Redis or Cluster)',
    );
  }
  if (hasUrl) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(options.url as string);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')) {
      throw invalidConfig(
        'url',
        'expected a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379',
      );
    }
    if (
      options.redisOptions !== undefined &&
      (typeof options.redisOptions !== 'object' || options.redisOptions === null)
    ) {
      throw invalidConfig('redisOptions', 'expected an object of ioredis options');
    }
  } else {
    const client = options.client as Partial<Redis>;
    if (
      typeof client?.evalsha !== 'function' ||
      typeof client.eval !== 'function' ||
      typeof client.status !== 'string'
    ) {
      throw invalidConfig('client', 'expected an ioredis Redis or Cluster client');
    }
  }
  const keys = createRedisKeyLayout(options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX);
  const { ttlMs, historyLimit = 0 } = options;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (ttlMs !== undefined && !(Number.isSafeInteger(ttlMs) && ttlMs > 0)) {
    throw invalidConfig('ttlMs', 'expected a positive integer (milliseconds)');
  }
  if (
    !(
      Number.isInteger(historyLimit) &&
      historyLimit >= 0 &&
      historyLimit <= LIMITS.historyMaxVersions
    )
  ) {
    throw invalidConfig(
      'historyLimit',
      `expected an integer from 0 to ${LIMITS.historyMaxVersions}`,
    );
  }
  assertTimeout('connectTimeoutMs', connectTimeoutMs);
  assertTimeout('commandTimeoutMs', commandTimeoutMs);
  return { keys, ttlMs: ttlMs ?? 0, historyLimit, connectTimeoutMs, commandTimeoutMs };
}

function asArray(reply: unknown, action: string): unknown[] {
  if (!Array.isArray(reply)) {
    throw new StorageError(
      'STORAGE_ERROR',
      `Redis ${action} returned an unexpected reply: ${String(reply)}`,
    );
  }
  return reply;
}

/**
 * Creates a {@link ContextRepository} on Redis (ioredis). `save` is one Lua script (run by digest
 * with `EVALSHA`) that checks the version, writes the snapshot, refreshes its TTL, appends to its
 * history and moves it in the list indexes atomically; `get` is one `GET`. All keys of a prefix
 * share one hash tag, so the scripts also run on Redis Cluster.
 *
 * Outages: a call waits at most `connectTimeoutMs` for a ready connection, and a client created
 * from `url` gives up on a reply after `commandTimeoutMs` (a script whose digest the server lost is
 * resent once, so the worst case is `connectTimeoutMs + 2 × commandTimeoutMs`); then it fails
 * with `STORAGE_UNAVAILABLE`. The client keeps reconnecting, and the same repository works again
 * once the server is back.
 *
 * @example
 * ```ts
 * import { createRedisRepository } from '@ctx/store-redis';
 *
 * const repository = createRedisRepository({ url: 'redis://127.0.0.1:6379', ttlMs: 7 * 86_400_000 });
 * const store = new SessionContextStore({ repository, extractor });
 * // …
 * await repository.close();
 * ```
 */
export function createRedisRepository(options: RedisRepositoryOptions): RedisRepository {
  const resolved = resolveOptions(options);
  const { keys, ttlMs, historyLimit } = resolved;

  let client: Redis | Cluster;
  let owned: ReturnType<typeof createOwnedClient> | undefined;
  if (options.url !== undefined) {
    owned = createOwnedClient(
      options.url,
      redisClientOptions({
        commandTimeoutMs: resolved.commandTimeoutMs,
        connectTimeoutMs: resolved.connectTimeoutMs,
      }),
      options.redisOptions,
    );
    client = owned.client;
  } else {
    client = options.client as Redis | Cluster;
  }
  const redis: RedisClient = client;
  const whenReady = createReadyGate(redis, resolved.connectTimeoutMs, () => owned?.lastError());
  const target = describeTarget(redis);

  let closed = false;
  let closing: Promise<void> | undefined;

  const assertOpen = () => {
    if (closed) {
      throw new StorageError(
        'CLOSED',
        `The Redis repository (${target}, prefix "${keys.keyPrefix}") is closed: create a new one`,
      );
    }
  };

  /** Runs `call` on a ready connection; every failure becomes a ContextError. */
  const perform = async <T>(action: string, call: () => Promise<T>): Promise<T> => {
    assertOpen();
    try {
      await whenReady();
      return await call();
    } catch (error) {
      throw toStorageError(error, action);
    }
  };

  const save = async (snapshot: SessionContext, saveOptions: SaveOptions) => {
    assertOpen();
    assertValidSave(snapshot, saveOptions);
    const { sessionId, userId } = snapshot;
    const member = encodeIndexMember(snapshot.updatedAt.getTime(), sessionId);
    const record = JSON.stringify([snapshot.version, member, userId]);
    const scriptKeys = [
      keys.session(sessionId),
      keys.history(sessionId),
      keys.meta,
      keys.all,
      keys.expiry,
    ];
    if (userId !== null) scriptKeys.push(keys.user(userId));
    const reply = await perform(`save of session "${sessionId}"`, () =>
      runScript(redis, SAVE_SCRIPT, scriptKeys, [
        sessionId,
        saveOptions.expectedVersion ?? 0,
        encodeDocument(snapshot),
        record,
        member,
        ttlMs,
        historyLimit,
      ]),
    );
    const [status, version] = asArray(reply, 'save') as [number, number];
    if (status === 0) {
      throw new VersionConflictError({
        sessionId,
        expectedVersion: saveOptions.expectedVersion,
        currentVersion: version === 0 ? null : version,
      });
    }
    if (status === 2) throw mismatch(keys.session(sessionId));
    return cloneSnapshot(snapshot);
  };

  const readList = async (
    index: string,
    bound: string,
    wanted: number,
    userId: string | undefined,
  ): Promise<SessionContext[]> => {
    const items: SessionContext[] = [];
    let next = bound;
    for (;;) {
      const reply = asArray(
        await perform('list', () =>
          runScript(
            redis,
            LIST_SCRIPT,
            [index, keys.meta, keys.all, keys.expiry],
            [next, wanted - items.length, LIST_SCAN_BUDGET],
          ),
        ),
        'list',
      );
      const [exhausted, last, ...documents] = reply as [number, string, ...string[]];
      for (const json of documents) {
        const item = decodeDocument(json, `${keys.base}s:…`);
        if (userId === undefined || item.userId === userId) items.push(item);
      }
      if (exhausted === 1 || items.length >= wanted) return items;
      next = last;
    }
  };

  const repository: RedisRepository = {
    capabilities: { ttl: ttlMs > 0, history: historyLimit > 0 },
    keys,
    client,

    async get(sessionId: string) {
      assertOpen();
      assertValidSessionId(sessionId);
      const key = keys.session(sessionId);
      const json = await perform(`get of session "${sessionId}"`, () => client.get(key));
      return json === null ? null : decodeDocument(json, key);
    },

    save,

    async delete(sessionId: string) {
      assertOpen();
      assertValidSessionId(sessionId);
      const reply = await perform(`delete of session "${sessionId}"`, () =>
        runScript(
          redis,
          DELETE_SCRIPT,
          [keys.session(sessionId), keys.history(sessionId), keys.meta, keys.all, keys.expiry],
          [sessionId],
        ),
      );
      return reply === 1;
    },

    async list(query?: ListQuery): Promise<ListPage> {
      assertOpen();
      const { userId, limit, after } = normalizeListQuery(query);
      const index = userId === undefined ? keys.all : keys.user(userId);
      const items = await readList(index, indexUpperBound(after), limit + 1, userId);
      return toListPage(items, limit);
    },

    async close() {
      closed = true;
      if (!owned) return;
      const own = owned.client;
      closing ??= own.quit().then(
        () => undefined,
        () => own.disconnect(),
      );
      await closing;
    },
  };

  if (ttlMs > 0) {
    repository.purgeExpired = async () => {
      assertOpen();
      let purged = 0;
      for (;;) {
        const reply = await perform('purgeExpired', () =>
          runScript(redis, PURGE_SCRIPT, [keys.expiry, keys.meta, keys.all], [PURGE_BATCH]),
        );
        const [count, examined] = asArray(reply, 'purgeExpired') as [number, number];
        purged += count;
        if (examined < PURGE_BATCH) return purged;
      }
    };
  }
  if (historyLimit > 0) {
    repository.history = async (sessionId, historyOptions) => {
      assertOpen();
      assertValidSessionId(sessionId);
      const limit = historyOptions?.limit ?? historyLimit;
      if (!(Number.isInteger(limit) && limit >= 1)) {
        throw new ValidationError(
          'INVALID_INPUT',
          `Invalid history limit ${String(limit)}: expected a positive integer`,
          { issues: [{ path: 'limit', message: 'not a positive integer' }] },
        );
      }
      const key = keys.history(sessionId);
      const entries = await perform(`history of session "${sessionId}"`, () =>
        client.lrange(key, 0, Math.min(limit, historyLimit) - 1),
      );
      return entries.map((json) => decodeDocument(json, key));
    };
  }
  return repository;
}
