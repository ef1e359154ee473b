import { createHash } from 'node:crypto';
import { StorageError } from '@ctx/core';
import type { DataSource } from 'typeorm';
import { isBrokenConnectionError } from './postgres-errors.js';

/** One result row, keyed by column name. */
export type Row = Record<string, unknown>;

/** Runs one statement and returns its rows. */
export type SqlRunner = (sql: string, params?: unknown[]) => Promise<Row[]>;

/**
 * The part of a `pg` `Pool` the repository uses: `pool.query` for every statement (it checks a
 * connection out, listens for its errors while it holds it, and destroys it when it failed) and
 * `pool.connect` for a transaction (migrations, a turn's record). A `pg.Pool` (or a compatible
 * pool) fits.
 */
export interface PostgresPool {
  query(config: { text: string; values?: unknown[]; name?: string }): Promise<{ rows: Row[] }>;
  connect(): Promise<PostgresPoolClient>;
}

/** A connection checked out of a {@link PostgresPool} (`pg.PoolClient`). */
export interface PostgresPoolClient {
  query(text: string, values?: unknown[]): Promise<{ rows: Row[] }>;
  /** Gives the connection back; with an error, the pool destroys it instead. */
  release(error?: Error | boolean): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/** How the driver reaches PostgreSQL, whichever way the repository was given a connection. */
export interface PostgresClient {
  /** One statement on any pooled connection, in its own implicit transaction. */
  query(sql: string, params: unknown[]): Promise<Row[]>;
  /**
   * Runs `body` in one READ COMMITTED transaction on one connection (migrations, and a turn's
   * record). Always READ COMMITTED, whatever the server's or the DataSource's default: the bodies
   * take an advisory lock and then read, which needs the fresh snapshot each statement gets there.
   */
  transaction<T>(body: (query: SqlRunner) => Promise<T>): Promise<T>;
  /** Waits for the statements already sent, then ends the pool if this client created it. */
  close(): Promise<void>;
}

/**
 * Counts the operations under way, so `close()` can wait for them before a pool it owns goes
 * away (pg-pool would refuse them, or never answer a caller still waiting for a connection).
 */
function createTracker() {
  let active = 0;
  let onIdle: (() => void) | undefined;
  return {
    async run<T>(work: () => Promise<T>): Promise<T> {
      active += 1;
      try {
        return await work();
      } finally {
        active -= 1;
        if (active === 0) onIdle?.();
      }
    },
    async settle(): Promise<void> {
      // A call that passed the repository's open check a moment ago, or the next statement of a
      // call under way, reaches the client only after the pending promise callbacks have run.
      for (;;) {
        await new Promise((resolve) => setImmediate(resolve));
        if (active === 0) return;
        await new Promise<void>((resolve) => {
          onIdle = resolve;
        });
      }
    },
  };
}

/**
 * The name a statement is prepared under: derived from its text, so repositories on other tables
 * sharing a pool (and the pool's other users) never collide with it.
 */
function statementNamer(): (sql: string) => string {
  const names = new Map<string, string>();
  return (sql) => {
    let name = names.get(sql);
    if (name === undefined) {
      name = `ctx_${createHash('sha256').update(sql).digest('hex').slice(0, 32)}`;
      names.set(sql, name);
    }
    return name;
  };
}

/**
 * A client on a `pg` pool: the given one (left open) or one the repository created (`owned`).
 * With `prepare`, every statement is a named prepared statement: each connection parses and
 * plans it once (about 40 % more `get`s per second than unnamed statements).
 */
export function createPoolClient(
  pool: PostgresPool & { end?(): Promise<void> },
  options: { owned: boolean; prepare: boolean },
): PostgresClient {
  const tracker = createTracker();
  const nameOf = options.prepare ? statementNamer() : undefined;
  const client: PostgresClient = {
    query: (sql, params) =>
      tracker.run(async () => {
        const name = nameOf?.(sql);
        const query = { text: sql, values: params, ...(name === undefined ? {} : { name }) };
        return (await pool.query(query)).rows;
      }),

    transaction: (body) =>
      tracker.run(async () => {
        const connection = await pool.connect();
        // An error event on a checked-out connection with no listener would crash the process;
        // the failure also reaches the statement that is running, which is where it is handled.
        const ignore = () => undefined;
        connection.on('error', ignore);
        let broken: Error | undefined;
        try {
          await connection.query('BEGIN ISOLATION LEVEL READ COMMITTED');
          try {
            const result = await body(
              async (sql, params) => (await connection.query(sql, params)).rows,
            );
            await connection.query('COMMIT');
            return result;
          } catch (error) {
            await connection.query('ROLLBACK').catch((rollbackError: Error) => {
              broken = rollbackError;
            });
            throw error;
          }
        } catch (error) {
          if (isBrokenConnectionError(error)) broken ??= error as Error;
          throw error;
        } finally {
          connection.removeListener('error', ignore);
          connection.release(broken);
        }
      }),

    async close() {
      await tracker.settle();
      if (options.owned) await pool.end?.();
    },
  };
  return client;
}

/**
 * A client on a TypeORM `DataSource`, through its public API only: `dataSource.query` for each
 * statement and `dataSource.transaction` for migrations and a turn's record. TypeORM's logger and
 * query subscribers see every statement. The DataSource is never initialized or destroyed here.
 */
export function createDataSourceClient(dataSource: DataSource): PostgresClient {
  const tracker = createTracker();
  const assertInitialized = () => {
    if (!dataSource.isInitialized) {
      throw new StorageError(
        'STORAGE_ERROR',
        'The TypeORM DataSource given to createPostgresRepository is not initialized (or was destroyed): call `await dataSource.initialize()` before using the repository',
      );
    }
  };
  return {
    // Every statement of the driver ends in a SELECT: TypeORM returns its rows as they are (for a
    // top-level UPDATE or DELETE it would return `[rows, count]`).
    query: (sql, params) =>
      tracker.run(async () => {
        assertInitialized();
        return (await dataSource.query(sql, params)) as Row[];
      }),

    transaction: (body) =>
      tracker.run(async () => {
        assertInitialized();
        return dataSource.transaction('READ COMMITTED', (manager) =>
          body(async (sql, params) => (await manager.query(sql, params)) as Row[]),
        );
      }),

    close: () => tracker.settle(),
  };
}
