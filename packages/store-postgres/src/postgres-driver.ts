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

/** A {@link ContextDriver} on PostgreSQL, plus the explicit migration the repository exposes. */
export interface PostgresDriver extends ContextDriver {
  /** Creates or upgrades the tables now, whatever the `migrate` setting. */
  migrate(): Promise<PostgresMigrationResult>;
}

// A refused create re-reads the live version only to report it; when the session vanished in
// between (deleted, expired), the create is tried again rather than reporting no version.
const CREATE_ATTEMPTS = 3;

/**
 * The PostgreSQL driver: every operation is one statement through `client` (a `pg` pool or a
 * TypeORM DataSource), and every write is an atomic conditional statement. Time comes from the
 * repository's clock (`now` in each request), never from the database server's.
 */
export function createPostgresDriver(
  client: PostgresClient,
  names: TableNames,
  settings: RepositorySettings,
): PostgresDriver {
  const statements = buildStatements(names, settings.historyLimit);

  const migrate = () => runPostgresMigrations(client, names);

  return {
    specVersion: DRIVER_SPEC_VERSION,
    name: 'PostgreSQL',
    supports: { ttl: true, history: true },
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

    async write({ snapshot, expectedVersion, now, expiresAt }) {
      const params = writeParams(snapshot, expiresAt, now);
      if (expectedVersion !== null) {
        params.push(expectedVersion);
        const [row] = await client.query(statements.update, params);
        if (row?.version !== null && row?.version !== undefined) {
          return { written: true, version: Number(row.version) };
        }
        const current = row?.current_version;
        return {
          written: false,
          currentVersion: current === null || current === undefined ? null : Number(current),
        };
      }
      for (let attempt = 1; ; attempt += 1) {
        const [row] = await client.query(statements.create, params);
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
      return Number(row?.purged ?? 0);
    },

    async history({ sessionId, limit, historyLimit, now }) {
      const rows = await client.query(statements.history, [sessionId, limit, historyLimit, now]);
      return rows.map(toSnapshot);
    },

    classifyError: (error) => classifyPostgresError(error, names.display),

    close: () => client.close(),
  };
}
