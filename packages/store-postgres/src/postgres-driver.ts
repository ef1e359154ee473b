import { StorageError } from '@ctx/core';
import {
  type ContextDriver,
  DRIVER_SPEC_VERSION,
  type DriverRemoveResult,
  type RepositorySettings,
} from '@ctx/core/adapter';
import type { PostgresClient } from './postgres-client.js';
import { classifyPostgresError } from './postgres-errors.js';
import {
  POSTGRES_SCHEMA_VERSION,
  type PostgresMigrationResult,
  readSchemaVersion,
  runPostgresMigrations,
} from './postgres-migrations.js';
import type { TableNames } from './postgres-schema.js';
import { buildStatements, toSnapshot, writeParams } from './postgres-sql.js';
import { buildTurnLogStatements, toDriverTurn } from './postgres-turn-log.js';

/** A {@link ContextDriver} on PostgreSQL, plus the explicit migration the repository exposes. */
export interface PostgresDriver extends ContextDriver {
  /** Creates or upgrades the tables now, whatever the `migrate` setting. */
  migrate(): Promise<PostgresMigrationResult>;
}

// A refused create re-reads the live version only to report it; when the session vanished in
// between (deleted, expired), the create is tried again rather than reporting no version.
const CREATE_ATTEMPTS = 3;

const nullableNumber = (value: unknown): number | null =>
  value === null || value === undefined ? null : Number(value);

/**
 * The PostgreSQL driver: every operation is one statement through `client` (a `pg` pool or a
 * TypeORM DataSource), and every write is an atomic conditional statement; a fold is part of its
 * compare-and-set statement. The exceptions: recording a turn is one transaction (a per-session
 * advisory lock, then one statement), and a purge runs a second statement for the turn log. Time
 * comes from the repository's clock (`now` in each request), never from the database server's.
 */
export function createPostgresDriver(
  client: PostgresClient,
  names: TableNames,
  settings: RepositorySettings,
): PostgresDriver {
  const statements = buildStatements(names, settings.historyLimit);
  const turnLog = buildTurnLogStatements(names);

  const migrate = () => runPostgresMigrations(client, names);

  return {
    specVersion: DRIVER_SPEC_VERSION,
    name: 'PostgreSQL',
    supports: { ttl: true, history: true, turnLog: true, fields: true },
    migrate,

    async init() {
      const version = await readSchemaVersion(
        (sql, params = []) => client.query(sql, params),
        names,
      );
      if (version === POSTGRES_SCHEMA_VERSION) return;
      if (settings.migrate) {
        await migrate();
        return;
      }
      throw new StorageError(
        'SCHEMA_MISMATCH',
        `The ctx tables ${names.display} are not migrated (schema version ${version ?? 'none'}, this code needs ${POSTGRES_SCHEMA_VERSION}). Run \`await repository.migrate()\` once (or add createPostgresMigrations() to your TypeORM migrations), or create the repository with \`migrate: true\`.`,
      );
    },

    async read({ sessionId, now }) {
      const rows = await client.query(statements.read, [sessionId, now]);
      return rows[0] ? toSnapshot(rows[0]) : null;
    },

    async write({ snapshot, expectedVersion, now, expiresAt, foldedTurnIds }) {
      const params = writeParams(snapshot, expiresAt, now);
      const folding = foldedTurnIds.length > 0;
      if (expectedVersion !== null) {
        params.push(expectedVersion);
        if (folding) params.push(foldedTurnIds);
        const [row] = await client.query(
          folding ? statements.updateFolding : statements.update,
          params,
        );
        const version = nullableNumber(row?.version);
        if (version !== null) return { written: true, version };
        return { written: false, currentVersion: nullableNumber(row?.current_version) };
      }
      if (folding) params.push(foldedTurnIds);
      const create = folding ? statements.createFolding : statements.create;
      for (let attempt = 1; ; attempt += 1) {
        const [row] = await client.query(create, params);
        if (row) return { written: true, version: Number(row.version) };
        const [live] = await client.query(statements.liveVersion, [snapshot.sessionId, now]);
        if (live) return { written: false, currentVersion: Number(live.version) };
        if (attempt === CREATE_ATTEMPTS) return { written: false, currentVersion: null };
      }
    },

    async remove({ sessionId, userId, expectedVersion, now }): Promise<DriverRemoveResult> {
      const [row] = await client.query(statements.remove, [
        sessionId,
        now,
        userId ?? null,
        expectedVersion ?? null,
      ]);
      if (row?.live !== true) return { status: 'absent' };
      if (row.removed === true) return { status: 'removed' };
      if (userId !== undefined && row.user_id !== null && row.user_id !== userId) {
        return { status: 'owner-mismatch' };
      }
      return { status: 'version-mismatch', currentVersion: Number(row.version) };
    },

    async scan({ userId, after, limit, now }) {
      const params: unknown[] = [now];
      if (userId !== undefined) params.push(userId);
      if (after) params.push(after.updatedAt, after.sessionId);
      params.push(limit);
      const sql = statements.scan({ byUser: userId !== undefined, afterCursor: after !== null });
      const rows = await client.query(sql, params);
      return rows.map(toSnapshot);
    },

    async purge({ now, tombstonesBefore }) {
      const [row] = await client.query(statements.purge, [now, tombstonesBefore]);
      // Forgetting folded turn ids and lapsed leases needs no atomicity with the above, and as
      // a statement of its own it holds no session row while it deletes turns.
      await client.query(turnLog.forget, [now, tombstonesBefore]);
      return Number(row?.purged ?? 0);
    },

    async history({ sessionId, limit, historyLimit, now }) {
      const rows = await client.query(statements.history, [sessionId, limit, historyLimit, now]);
      return rows.map(toSnapshot);
    },

    recordTurn({ sessionId, turn, now, maxPending }) {
      const params = [
        sessionId,
        turn.turnId,
        turn.userId,
        JSON.stringify(turn.messages),
        now,
        maxPending,
      ];
      return client.transaction(async (query) => {
        await query(turnLog.lock, [sessionId]);
        const [row] = await query(turnLog.record, params);
        const duplicate = nullableNumber(row?.duplicate);
        if (duplicate !== null) return { status: 'duplicate', sequence: duplicate };
        const sequence = nullableNumber(row?.sequence);
        if (sequence !== null) return { status: 'recorded', sequence };
        return { status: 'full', pending: Number(row?.pending) };
      });
    },

    async readPending({ sessionId, limit }) {
      const rows = await client.query(turnLog.readPending, [sessionId, limit]);
      return rows.map(toDriverTurn);
    },

    async lease({ sessionId, holder, ttlMs, now }) {
      const [row] = await client.query(turnLog.lease, [sessionId, holder, now + ttlMs, now]);
      return row?.taken === true;
    },

    async releaseLease({ sessionId, holder }) {
      await client.query(turnLog.releaseLease, [sessionId, holder]);
    },

    async pendingSessions({ recordedBefore, limit, now }) {
      const rows = await client.query(turnLog.pendingSessions, [recordedBefore, limit, now]);
      return rows.map((row) => String(row.session_id));
    },

    classifyError: (error) => classifyPostgresError(error, names.display),

    close: () => client.close(),
  };
}
