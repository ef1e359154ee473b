import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeContextRepository } from '@ctx/conformance';
import Database from 'better-sqlite3';
import { createSqliteRepository } from '../src/index.js';
import { createRawReader } from './raw-reader.js';

// One database file shared by the whole suite. Every repository opens its own better-sqlite3
// handle on it, so the "second connection" is an independent Database handle on the same file;
// readRaw goes through yet another handle.
const folder = mkdtempSync(join(tmpdir(), 'ctx-store-sqlite-conformance-'));
const filename = join(folder, 'conformance.db');
let raw: Database.Database | undefined;
const rawHandle = () => {
  raw ??= new Database(filename, { readonly: true });
  return raw;
};

describeContextRepository({
  name: 'sqlite (file, two Database handles)',
  createRepository: (options) => createSqliteRepository({ filename, ...options }),
  createSecondConnection: (options) => createSqliteRepository({ filename, ...options }),
  readRaw: (sessionId) => createRawReader(rawHandle())(sessionId),
  capabilities: { ttl: true, history: true, turnLog: true, fields: true },
  teardown: () => {
    raw?.close();
    rmSync(folder, { recursive: true, force: true });
  },
});
