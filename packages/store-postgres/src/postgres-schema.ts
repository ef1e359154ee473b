import type { StoredFields } from '@ctx/core';
import { assertValidTableName, DEFAULT_TABLE_NAME, invalidOption } from '@ctx/core/adapter';
import { EntitySchema } from 'typeorm';

/** Default PostgreSQL schema of the ctx tables. */
export const DEFAULT_SCHEMA = 'public';
/** Default name of the snapshot table, shared by every SQL adapter (`'ctx_sessions'`). */
export { DEFAULT_TABLE_NAME };
/** Name of the bookkeeping table that records applied ctx migrations, in the same schema. */
export const MIGRATIONS_TABLE_NAME = 'ctx_migrations';

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
// Identifiers are cut at 63 bytes; the longest derived name (`<table>_history_session_idx`) adds 20
// (`<table>_turns_sequence_seq`, the turn log's identity sequence, adds 19).
const MAX_TABLE_NAME_LENGTH = 40;

/** Where the ctx tables live. Both names are plain lower-case SQL identifiers. */
export interface PostgresTableOptions {
  /**
   * PostgreSQL schema that holds the tables (created by `migrate()` when missing).
   * @default 'public'
   */
  schema?: string;
  /**
   * Name of the snapshot table, at most 40 characters. The history table is
   * `<tableName>_history`, the turn log's tables are `<tableName>_turns` and `<tableName>_leases`;
   * indexes are prefixed with them too.
   * @default 'ctx_sessions'
   */
  tableName?: string;
}

/** Resolved, validated names and their quoted SQL forms. */
export interface TableNames {
  schema: string;
  table: string;
  history: string;
  /** The turn log's turns table, `<table>_turns`. */
  turns: string;
  /** The turn log's lease table, `<table>_leases`. */
  leases: string;
  /** `"schema"."table"` */
  qualifiedTable: string;
  /** `"schema"."table_history"` */
  qualifiedHistory: string;
  /** `"schema"."table_turns"` */
  qualifiedTurns: string;
  /** `"schema"."table_leases"` */
  qualifiedLeases: string;
  /** `"schema"."ctx_migrations"` */
  qualifiedMigrations: string;
  /** `schema.table`, for messages. */
  display: string;
}

/** Validates the schema and table names (`INVALID_CONFIG`) and builds their quoted forms. */
export function resolveTableNames(options: PostgresTableOptions = {}): TableNames {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const table = options.tableName ?? DEFAULT_TABLE_NAME;
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema) || schema.length > 63) {
    throw invalidOption(
      'PostgreSQL',
      'schema',
      `${JSON.stringify(schema)} is not a valid name: use a lower-case SQL identifier (a-z, 0-9, _; starting with a letter or _; at most 63 characters)`,
    );
  }
  assertValidTableName('PostgreSQL', table);
  if (table.length > MAX_TABLE_NAME_LENGTH) {
    throw invalidOption(
      'PostgreSQL',
      'tableName',
      `"${table}" is too long: at most ${MAX_TABLE_NAME_LENGTH} characters, so the derived index names fit PostgreSQL's 63-byte identifiers`,
    );
  }
  if (table === MIGRATIONS_TABLE_NAME) {
    throw invalidOption(
      'PostgreSQL',
      'tableName',
      `"${table}" is reserved for the migrations bookkeeping table`,
    );
  }
  const history = `${table}_history`;
  const turns = `${table}_turns`;
  const leases = `${table}_leases`;
  return {
    schema,
    table,
    history,
    turns,
    leases,
    qualifiedTable: `"${schema}"."${table}"`,
    qualifiedHistory: `"${schema}"."${history}"`,
    qualifiedTurns: `"${schema}"."${turns}"`,
    qualifiedLeases: `"${schema}"."${leases}"`,
    qualifiedMigrations: `"${schema}"."${MIGRATIONS_TABLE_NAME}"`,
    display: `${schema}.${table}`,
  };
}

/**
 * One row of the snapshot table as TypeORM maps it through {@link createPostgresEntities}.
 * Property names are camelCase; columns are snake_case (see the README's table layout).
 */
export interface SessionContextRow {
  sessionId: string;
  userId: string | null;
  summary: string;
  goal: string | null;
  plan: string[] | null;
  progress: string[] | null;
  /** The custom fields (one JSON object), `null` when none are set. */
  fields: StoredFields | null;
  createdAt: Date;
  updatedAt: Date;
  version: number;
  /** When the row stops being live; `null` for sessions written without a TTL, and for tombstones. */
  expiresAt: Date | null;
  /**
   * When the session was deleted or expired (`null` while it is live or merely expired, not yet
   * purged). A row with a `deletedAt` is a **tombstone**: it keeps only the id, the last version
   * and the timestamps, so versions of the id never restart.
   */
  deletedAt: Date | null;
}

/** One row of the history table: a past (or the current) version of a session. */
export interface SessionContextHistoryRow
  extends Omit<SessionContextRow, 'expiresAt' | 'deletedAt'> {
  /** Surrogate key, in insertion order. */
  id: number;
}

/** The TypeORM entity schemas of the ctx tables; see {@link createPostgresEntities}. */
export interface PostgresEntities {
  /** Snapshot table (`<tableName>`). */
  sessionContext: EntitySchema<SessionContextRow>;
  /** History table (`<tableName>_history`). */
  sessionContextHistory: EntitySchema<SessionContextHistoryRow>;
}

const bigintAsNumber = {
  to: (value: unknown) => value,
  from: (value: unknown) => (value === null || value === undefined ? value : Number(value)),
};

/**
 * TypeORM `EntitySchema`s describing the ctx tables, for apps that want to query them with
 * TypeORM repositories or query builders (read-only use is recommended: writes that bypass the
 * repository skip the compare-and-set and the history). Add them to your DataSource's `entities`.
 *
 * `deletedAt` is declared as TypeORM's delete date column, so `find()` leaves tombstones out
 * (`withDeleted: true` shows them). Expired rows not yet purged are still found: filter on
 * `expiresAt` for live sessions only.
 *
 * Both schemas set `synchronize: false`, so `synchronize: true` in your DataSource never alters
 * the ctx tables: the package's migrations own them.
 *
 * @example
 * ```ts
 * const entities = createPostgresEntities();
 * const dataSource = new DataSource({ type: 'postgres', url, entities: [...myEntities, ...Object.values(entities)] });
 * await dataSource.initialize();
 * const rows = await dataSource.getRepository(entities.sessionContext).find({ where: { userId: 'u1' } });
 * ```
 */
export function createPostgresEntities(options: PostgresTableOptions = {}): PostgresEntities {
  const names = resolveTableNames(options);
  const isDefault = names.schema === DEFAULT_SCHEMA && names.table === DEFAULT_TABLE_NAME;
  const suffix = isDefault ? '' : `_${names.schema}_${names.table}`;
  const snapshotColumns = {
    userId: { name: 'user_id', type: 'text', nullable: true },
    summary: { name: 'summary', type: 'text' },
    goal: { name: 'goal', type: 'text', nullable: true },
    plan: { name: 'plan', type: 'jsonb', nullable: true },
    progress: { name: 'progress', type: 'jsonb', nullable: true },
    fields: { name: 'fields', type: 'jsonb', nullable: true },
    createdAt: { name: 'created_at', type: 'timestamptz' },
    updatedAt: { name: 'updated_at', type: 'timestamptz' },
    version: { name: 'version', type: 'bigint', transformer: bigintAsNumber },
  } as const;

  const sessionContext = new EntitySchema<SessionContextRow>({
    name: `CtxSessionContext${suffix}`,
    schema: names.schema,
    tableName: names.table,
    synchronize: false,
    columns: {
      sessionId: { name: 'session_id', type: 'text', primary: true, collation: 'C' },
      ...snapshotColumns,
      expiresAt: { name: 'expires_at', type: 'timestamptz', nullable: true },
      deletedAt: { name: 'deleted_at', type: 'timestamptz', nullable: true, deleteDate: true },
    },
  });

  const sessionContextHistory = new EntitySchema<SessionContextHistoryRow>({
    name: `CtxSessionContextHistory${suffix}`,
    schema: names.schema,
    tableName: names.history,
    synchronize: false,
    columns: {
      id: {
        name: 'id',
        type: 'bigint',
        primary: true,
        generated: 'increment',
        transformer: bigintAsNumber,
      },
      sessionId: { name: 'session_id', type: 'text', collation: 'C' },
      ...snapshotColumns,
    },
  });

  return { sessionContext, sessionContextHistory };
}
