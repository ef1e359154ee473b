import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerStoreScheme, type StoreKind } from '@ctx/config';
import { type ContextRepository, ValidationError } from '@ctx/core';
import { afterAll, describe, expect, it } from 'vitest';
import { oneErrorLine, PACKAGE_ROOT, runInProcess } from './helpers.js';

// An adapter package that is not installed: a store URL that needs it must fail in one line that
// names what to install, as for a built-in store whose optional peer the app does not have.
const MISSING_PACKAGE = '@ctx/store-not-installed-for-this-test';
const unregister = registerStoreScheme({
  // Not declared in StoreLocations: the CLI's own switches over the built-in kinds stay exhaustive.
  kind: 'cli-missing-adapter' as StoreKind,
  schemes: ['missingstore'],
  form: 'missingstore://host/db',
  packageName: MISSING_PACKAGE,
  install: `${MISSING_PACKAGE} some-driver`,
  parse: (parts) => ({ url: parts.url }),
  load: () => import(MISSING_PACKAGE) as Promise<{ create(): ContextRepository }>,
  create: (adapter) => adapter.create(),
});
afterAll(() => unregister());

describe('stores and models are optional peers', () => {
  it('a store URL whose adapter is not installed fails with one line naming what to install', async () => {
    const { code, stderr } = await runInProcess([
      'list',
      '--store',
      'missingstore://db.internal/app',
    ]);
    expect(code).toBe(1);
    const line = oneErrorLine(stderr);
    expect(line).toContain(`needs ${MISSING_PACKAGE}`);
    expect(line).toContain(`install ${MISSING_PACKAGE} some-driver`);
  });

  it('the error is the typed INVALID_CONFIG that @ctx/config throws for a missing peer', async () => {
    const { createRepositoryFromUrl } = await import('@ctx/config');
    const error = await createRepositoryFromUrl('missingstore://db.internal/app').catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe('INVALID_CONFIG');
  });

  it('installs no store, model, driver or SDK of its own: they are optional peers', () => {
    const manifest = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      peerDependencies: Record<string, string>;
      peerDependenciesMeta: Record<string, { optional?: boolean }>;
    };
    expect(Object.keys(manifest.dependencies).sort()).toEqual(['@ctx/config', '@ctx/core']);
    for (const name of [
      '@ctx/store-sqlite',
      '@ctx/store-postgres',
      '@ctx/store-redis',
      '@ctx/store-mysql',
      '@ctx/model-openai',
      '@ctx/model-gemini',
      'better-sqlite3',
      'typeorm',
      'pg',
      'ioredis',
      'mysql2',
      'openai',
      '@google/genai',
    ]) {
      expect(manifest.peerDependencies[name], name).toBeDefined();
      expect(manifest.peerDependenciesMeta[name]?.optional, name).toBe(true);
    }
  });
});
