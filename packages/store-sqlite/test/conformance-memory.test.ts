import { describeContextRepository } from '@ctx/conformance';
import Database from 'better-sqlite3';
import { createSqliteRepository } from '../src/index.js';
import { createRawReader } from './raw-reader.js';

// The suite once more on one injected in-memory Database: every repository shares the handle and
// never closes it. An in-memory database has no second connection.
const database = new Database(':memory:');

describeContextRepository({
  name: 'sqlite (injected :memory: Database)',
  createRepository: (options) => createSqliteRepository({ database, ...options }),
  readRaw: createRawReader(database),
  capabilities: { ttl: true, history: true, turnLog: true, fields: true },
  teardown: () => {
    database.close();
  },
});
