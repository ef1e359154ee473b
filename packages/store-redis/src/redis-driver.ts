import { type SessionContext, StorageError } from '@ctx/core';
import type {
  ContextDriver,
  DriverRemoveResult,
  DriverWriteResult,
  RepositorySettings,
} from '@ctx/core/adapter';
import { decodeDocument, encodeDocumentHead, mismatch } from './redis-document.js';
import { classifyRedisError } from './redis-errors.js';
import { encodeIndexMember, indexUpperBound, type RedisKeyLayout } from './redis-keys.js';
import {
  asArray,
  DELETE_SCRIPT,
  LIST_SCRIPT,
  PURGE_SCRIPT,
  type RedisClient,
  runScript,
  SAVE_SCRIPT,
} from './redis-scripts.js';
import { createRedisTurnLog } from './redis-turn-log.js';

/** What {@link createRedisDriver} works with. */
export interface RedisDriverOptions {
  /** The client to run commands on (never closed by the driver). */
  client: RedisClient;
  /** The key names of the repository's prefix. */
  keys: RedisKeyLayout;
  /** Resolves once the client is ready, or rejects with `STORAGE_UNAVAILABLE` in time. */
  whenReady: () => Promise<void>;
  /** Closes what the repository opened itself (a client created from a URL); nothing otherwise. */
  close?: () => Promise<void>;
}

/** Index entries one list script call may examine, so a backlog of stale entries never blocks the server for long. */
const LIST_SCAN_BUDGET = 2_000;
/** Expired sessions, and old tombstones, one purge script call handles at most. */
const PURGE_BATCH = 500;

const REMOVE_STATUS = ['absent', 'removed', 'owner-mismatch', 'version-mismatch'] as const;

/**
 * The Redis {@link ContextDriver}: `read` is one `GET`, every write is one Lua script (run by
 * digest), and expiry is Redis's own key expiry. The bookkeeping hash keeps each id's last version
 * after its session expired or was deleted, which is the tombstone a re-create continues from.
 * The turn log (see `redis-turn-log.ts`) lives beside the sessions: the save script folds turns
 * when it writes, and the delete script drops a session's turns and lease when it removes the
 * session or finds none live.
 */
export function createRedisDriver(
  options: RedisDriverOptions,
  settings: Pick<RepositorySettings, 'backend'>,
): ContextDriver {
  const { client, keys, whenReady } = options;

  const scanIndex = async (
    index: string,
    bound: string,
    wanted: number,
    userId: string | undefined,
  ): Promise<SessionContext[]> => {
    const items: SessionContext[] = [];
    let next = bound;
    for (;;) {
      const reply = asArray(
        await runScript(
          client,
          LIST_SCRIPT,
          [index, keys.meta, keys.all],
          [next, wanted - items.length, LIST_SCAN_BUDGET],
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

  // The keys the save and delete scripts declare for one session (all in the prefix's slot).
  const sessionKeys = (sessionId: string): string[] => [
    keys.session(sessionId),
    keys.history(sessionId),
    keys.meta,
    keys.all,
    keys.expiry,
    keys.tombstones,
    keys.turns(sessionId),
    keys.pendingTurns(sessionId),
    keys.foldedTurns(sessionId),
    keys.pendingSessions,
    keys.foldedSessions,
  ];

  return {
    specVersion: 1,
    name: settings.backend,
    supports: { ttl: true, history: true, turnLog: true, fields: true },

    async read({ sessionId }) {
      // The hot path: no await of the ready gate on a ready client, then one GET.
      if (client.status !== 'ready') await whenReady();
      const key = keys.session(sessionId);
      const json = await client.get(key);
      return json === null ? null : decodeDocument(json, key);
    },

    async write({ snapshot, expectedVersion, now, expiresAt, historyLimit, foldedTurnIds }) {
      if (client.status !== 'ready') await whenReady();
      const { sessionId, userId } = snapshot;
      const member = encodeIndexMember(snapshot.updatedAt.getTime(), sessionId);
      const scriptKeys = sessionKeys(sessionId);
      if (userId !== null) scriptKeys.push(keys.user(userId));
      const reply = await runScript(client, SAVE_SCRIPT, scriptKeys, [
        sessionId,
        expectedVersion ?? 0,
        encodeDocumentHead(snapshot),
        JSON.stringify([member, userId]).slice(1),
        member,
        expiresAt === null ? 0 : Math.max(1, expiresAt - now),
        historyLimit,
        expiresAt ?? 0,
        now,
        ...foldedTurnIds,
      ]);
      const [status, version] = asArray(reply, 'save') as [number, number];
      if (status === 2) throw mismatch(keys.session(sessionId));
      const result: DriverWriteResult =
        status === 1
          ? { written: true, version }
          : { written: false, currentVersion: version === 0 ? null : version };
      return result;
    },

    async remove({ sessionId, userId, expectedVersion, now }) {
      if (client.status !== 'ready') await whenReady();
      const reply = await runScript(
        client,
        DELETE_SCRIPT,
        [...sessionKeys(sessionId), keys.leases, keys.leaseHolders],
        [sessionId, userId ?? '', expectedVersion ?? 0, now],
      );
      const [status, version] = asArray(reply, 'delete') as [number, number];
      if (status === 4) throw mismatch(keys.session(sessionId));
      const name = REMOVE_STATUS[status];
      if (name === undefined) {
        throw new StorageError(
          'STORAGE_ERROR',
          `Redis delete returned an unknown status ${status}`,
        );
      }
      const result: DriverRemoveResult =
        name === 'version-mismatch' ? { status: name, currentVersion: version } : { status: name };
      return result;
    },

    async scan({ userId, after, limit }) {
      if (client.status !== 'ready') await whenReady();
      const index = userId === undefined ? keys.all : keys.user(userId);
      return scanIndex(index, indexUpperBound(after), limit, userId);
    },

    async purge({ now, tombstonesBefore }) {
      if (client.status !== 'ready') await whenReady();
      let tombstoned = 0;
      for (;;) {
        const reply = await runScript(
          client,
          PURGE_SCRIPT,
          [
            keys.expiry,
            keys.meta,
            keys.all,
            keys.tombstones,
            keys.foldedSessions,
            keys.leases,
            keys.leaseHolders,
          ],
          [PURGE_BATCH, now, tombstonesBefore],
        );
        const [count, ...examined] = asArray(reply, 'purgeExpired') as number[];
        tombstoned += count ?? 0;
        if (examined.every((value) => value < PURGE_BATCH)) return tombstoned;
      }
    },

    async history({ sessionId, limit }) {
      if (client.status !== 'ready') await whenReady();
      // Every write pushes its version and a create starts a new list, so the newest `limit`
      // entries are consecutive versions of the live session (the list expires with it).
      const key = keys.history(sessionId);
      const entries = await client.lrange(key, 0, limit - 1);
      return entries.map((json) => decodeDocument(json, key));
    },

    ...createRedisTurnLog({ client, keys, whenReady }),

    classifyError: classifyRedisError,

    ...(options.close === undefined ? {} : { close: options.close }),
  };
}
