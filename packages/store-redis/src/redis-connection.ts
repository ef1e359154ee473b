import { StorageError } from '@ctx/core';
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisClient } from './redis-scripts.js';

/** Upper bound of the pause between two reconnection attempts of a client we create. */
const MAX_RECONNECT_DELAY_MS = 1_000;

/**
 * What {@link redisClientOptions} sets: only these fields, so the result fits every ioredis
 * constructor overload (ioredis 6 types `replyMapping` per client, and a whole `RedisOptions`
 * would not fit a default client under `exactOptionalPropertyTypes`).
 */
export type RedisClientOptions = Pick<
  RedisOptions,
  | 'enableOfflineQueue'
  | 'maxRetriesPerRequest'
  | 'autoResendUnfulfilledCommands'
  | 'commandTimeout'
  | 'connectTimeout'
  | 'disconnectTimeout'
  | 'retryStrategy'
>;

/**
 * The ioredis options a repository uses for a client it creates from a URL: no offline queue (a
 * call made while the connection is down fails instead of waiting in an unbounded queue), no
 * retry of a command whose connection dropped, a per-command timeout, and a reconnection strategy
 * that never gives up, so the same client works again once the server is back.
 *
 * Use them for a client you create yourself to get the same outage behaviour.
 *
 * @example
 * ```ts
 * const client = new Redis(url, redisClientOptions({ commandTimeoutMs: 2000, connectTimeoutMs: 2000 }));
 * const repository = createRedisRepository({ client });
 * ```
 */
export function redisClientOptions(options: {
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}): RedisClientOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    // ioredis keeps a closing socket (and so the process) alive up to this long; a socket that is
    // still connecting when we close would otherwise hold the process for 2 s.
    disconnectTimeout: 200,
    retryStrategy: (attempt: number) =>
      Math.min(50 * 2 ** Math.min(attempt - 1, 10), MAX_RECONNECT_DELAY_MS),
  };
}

/** A client created (and owned) by the repository. */
export interface OwnedClient {
  client: Redis;
  /** The last connection error, for messages. */
  lastError(): Error | undefined;
}

/** Creates a client for `url`; it starts connecting at once and reconnects forever. */
export function createOwnedClient(
  url: string,
  defaults: RedisOptions,
  overrides: RedisOptions | undefined,
): OwnedClient {
  const { replyMapping, ...options } = { ...defaults, ...overrides };
  // ioredis 6 types the client by `replyMapping`: given only when set, so the options fit its
  // constructor (ioredis fills an unset one with its default either way).
  const client = new Redis(
    url,
    replyMapping === undefined ? options : { ...options, replyMapping },
  );
  let last: Error | undefined;
  // Without a listener ioredis prints every connection error; the repository reports them itself,
  // as the cause of the STORAGE_UNAVAILABLE error of the call that met the outage.
  client.on('error', (error: Error) => {
    last = error;
  });
  client.on('ready', () => {
    last = undefined;
  });
  return { client, lastError: () => last };
}

/** `host:port` (or the URL without its credentials), for messages. */
export function describeTarget(client: RedisClient): string {
  if ('isCluster' in client && client.isCluster) return 'the Redis Cluster';
  const options = (client as Redis).options;
  if (options?.path) return `Redis at ${options.path}`;
  return `Redis at ${options?.host ?? 'localhost'}:${options?.port ?? 6379}`;
}

/**
 * Resolves once `client` is ready to take commands, or rejects with `STORAGE_UNAVAILABLE` after
 * `timeoutMs`. Concurrent callers share one wait, so an outage never piles up listeners.
 */
export function createReadyGate(
  client: RedisClient,
  timeoutMs: number,
  lastError: () => Error | undefined,
): () => Promise<void> {
  let pending: Promise<void> | undefined;

  const closedError = () =>
    new StorageError(
      'STORAGE_UNAVAILABLE',
      `The ioredis client for ${describeTarget(client)} was closed (status "end") and will not reconnect: create the repository with an open client`,
      { cause: lastError() },
    );

  const wait = () =>
    new Promise<void>((resolve, reject) => {
      const settle = (error?: StorageError) => {
        clearTimeout(timer);
        client.off('ready', onReady);
        client.off('end', onEnd);
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => settle();
      const onEnd = () => settle(closedError());
      const timer = setTimeout(() => {
        const cause = lastError();
        settle(
          new StorageError(
            'STORAGE_UNAVAILABLE',
            `${describeTarget(client)} is unreachable: no connection became ready within ${timeoutMs} ms (client status "${client.status}"${cause ? `, last error: ${cause.message}` : ''}). Check that the server is running and reachable; the call can be retried once it is back`,
            { cause },
          ),
        );
      }, timeoutMs);
      client.on('ready', onReady);
      client.on('end', onEnd);
    });

  return async () => {
    if (client.status === 'ready') return;
    if (client.status === 'end') throw closedError();
    if (client.status === 'wait') client.connect().catch(() => undefined);
    pending ??= wait().finally(() => {
      pending = undefined;
    });
    await pending;
  };
}
