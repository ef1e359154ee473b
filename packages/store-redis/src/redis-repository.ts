import type { TurnLog } from '@ctx/core';
import {
  createDriverRepository,
  type DriverRepository,
  invalidOption,
  type RepositoryOptions,
  resolveRepositorySettings,
} from '@ctx/core/adapter';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import {
  createOwnedClient,
  createReadyGate,
  type OwnedClient,
  redisClientOptions,
} from './redis-connection.js';
import { createRedisDriver } from './redis-driver.js';
import {
  createRedisKeyLayout,
  DEFAULT_REDIS_KEY_PREFIX,
  type RedisKeyLayout,
} from './redis-keys.js';

/** Options shared by both ways of creating a {@link createRedisRepository | Redis repository}. */
export interface RedisRepositoryCommonOptions extends RepositoryOptions {
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
   * by every `save`). Expired sessions are invisible to `get`, `list`, `delete` and `history`;
   * `list` removes their index entries as it meets them and `purgeExpired()` turns them into
   * tombstones. Enables the `ttl` capability.
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
   * How long the id of a deleted or expired session keeps its last version (its record in
   * `{<keyPrefix>}:meta`), in milliseconds. While it lasts, a writer that read the old session can
   * never write into a new session created under the same id. `purgeExpired()` forgets older
   * tombstones, and the ids of turns folded longer ago than this (recording such an id again then
   * stores it as a new turn); until it runs, they stay.
   * @default 604800000 (7 days)
   */
  tombstoneRetentionMs?: number;
  /**
   * Turn log: the most pending (recorded, not yet folded) turns a session may hold; `recordTurn`
   * fails with `BACKPRESSURE` beyond it. Checked inside the record script, so it holds for any
   * number of concurrent clients.
   * @default 1000
   */
  maxPendingTurns?: number;
  /**
   * Accepted like in every adapter; Redis has no schema to create or check, so it changes nothing.
   * @default true
   */
  migrate?: boolean;
  /**
   * The repository's clock, in epoch milliseconds: dates tombstones, the expiry schedule of
   * `purgeExpired()`, recorded and folded turns, and lease expiry. Sessions themselves expire by
   * the server's clock (native key expiry).
   * @default Date.now
   */
  now?: () => number;
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

/**
 * A `ContextRepository` stored in Redis: every optional member present (see `DriverRepository`),
 * the turn log included.
 */
export interface RedisRepository extends DriverRepository {
  /** Records a turn: one script checks the id, the pending bound and appends (`TurnLog`). */
  recordTurn: TurnLog['recordTurn'];
  /** The session's pending turns, oldest first, in one script (`TurnLog`). */
  pendingTurns: TurnLog['pendingTurns'];
  /** Takes or renews the session's lease, in one script (`TurnLog`). */
  acquireLease: TurnLog['acquireLease'];
  /** Ends the holder's lease, in one script (`TurnLog`). */
  releaseLease: TurnLog['releaseLease'];
  /** Unleased sessions with pending turns, oldest first (`TurnLog`). */
  sessionsWithPendingTurns: TurnLog['sessionsWithPendingTurns'];
  /** The key names this repository reads and writes (for `redis-cli` and tooling). */
  readonly keys: RedisKeyLayout;
  /** The ioredis client in use (created from `url` or injected). */
  readonly client: Redis | Cluster;
}

const BACKEND = 'Redis';
const DEFAULT_TIMEOUT_MS = 5_000;
const MAX_TIMEOUT_MS = 2_147_483_647;

function assertTimeout(path: string, value: unknown): asserts value is number {
  if (!(Number.isInteger(value) && (value as number) > 0 && (value as number) <= MAX_TIMEOUT_MS)) {
    throw invalidOption(
      BACKEND,
      path,
      `expected an integer from 1 to ${MAX_TIMEOUT_MS} (milliseconds)`,
    );
  }
}

/** Checks the Redis-specific options: exactly one of `url` and `client`, and sane values. */
function assertConnectionOptions(options: RedisRepositoryOptions): void {
  const hasUrl = options.url !== undefined;
  const hasClient = options.client !== undefined;
  if (hasUrl === hasClient) {
    throw invalidOption(
      BACKEND,
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
      throw invalidOption(
        BACKEND,
        'url',
        'expected a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379',
      );
    }
    if (
      options.redisOptions !== undefined &&
      (typeof options.redisOptions !== 'object' || options.redisOptions === null)
    ) {
      throw invalidOption(BACKEND, 'redisOptions', 'expected an object of ioredis options');
    }
  } else {
    const client = options.client as Partial<Redis>;
    if (
      typeof client?.evalsha !== 'function' ||
      typeof client.eval !== 'function' ||
      typeof client.status !== 'string'
    ) {
      throw invalidOption(BACKEND, 'client', 'expected an ioredis Redis or Cluster client');
    }
  }
  assertTimeout('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS);
  assertTimeout('commandTimeoutMs', options.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS);
}

/**
 * Creates a `ContextRepository` on Redis (ioredis). `get` is one `GET`; `save` and `delete` are
 * each one Lua script (run by digest with `EVALSHA`): a compare-and-set that writes the snapshot,
 * refreshes its TTL, appends to its history and moves it in the list indexes, and a delete that
 * checks owner and version before it leaves a tombstone. Versions of one id never restart while
 * its tombstone lasts (`tombstoneRetentionMs`). All keys of a prefix share one hash tag, so the
 * scripts also run on Redis Cluster.
 *
 * The repository has the turn log (`capabilities.turnLog`): `recordTurn`, `pendingTurns`,
 * `acquireLease`, `releaseLease` and `sessionsWithPendingTurns` are one script each, and
 * `save(snapshot, { expectedVersion, foldedTurnIds })` marks the folded turns in the same script
 * as the compare-and-set, only when it writes.
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
  const settings = resolveRepositorySettings(BACKEND, options);
  assertConnectionOptions(options);
  const keys = createRedisKeyLayout(options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX);
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS;

  let client: Redis | Cluster;
  let owned: OwnedClient | undefined;
  if (options.url !== undefined) {
    owned = createOwnedClient(
      options.url,
      redisClientOptions({
        commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS,
        connectTimeoutMs,
      }),
      options.redisOptions,
    );
    client = owned.client;
  } else {
    client = options.client as Redis | Cluster;
  }

  let close: (() => Promise<void>) | undefined;
  if (owned) {
    const own = owned.client;
    close = () =>
      own.quit().then(
        () => undefined,
        () => own.disconnect(),
      );
  }
  const driver = createRedisDriver(
    {
      client,
      keys,
      whenReady: createReadyGate(client, connectTimeoutMs, () => owned?.lastError()),
      ...(close === undefined ? {} : { close }),
    },
    settings,
  );
  // The driver supports the turn log, so the repository has its members (not visible in the type
  // createDriverRepository returns).
  return Object.assign(createDriverRepository(driver, settings), {
    keys,
    client,
  }) as RedisRepository;
}
