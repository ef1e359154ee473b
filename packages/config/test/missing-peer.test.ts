import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const coreRoot = fileURLToPath(new URL('../../core', import.meta.url));
const extractiveRoot = fileURLToPath(new URL('../../model-extractive', import.meta.url));

/**
 * An app outside the monorepo that installed @ctx/config and @ctx/core but no adapter: the copy of
 * the built package resolves its peers from the app's node_modules, where they are missing. Its
 * one dependency, @ctx/model-extractive, is installed with it.
 */
describe('an app without the optional adapters', () => {
  let app: string;

  beforeAll(async () => {
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: packageRoot });
    app = mkdtempSync(join(tmpdir(), 'ctx-config-app-'));
    const installed = join(app, 'node_modules', '@ctx', 'config');
    mkdirSync(installed, { recursive: true });
    cpSync(join(packageRoot, 'package.json'), join(installed, 'package.json'));
    cpSync(join(packageRoot, 'dist'), join(installed, 'dist'), { recursive: true });
    symlinkSync(coreRoot, join(app, 'node_modules', '@ctx', 'core'), 'dir');
    symlinkSync(extractiveRoot, join(app, 'node_modules', '@ctx', 'model-extractive'), 'dir');
    writeFileSync(
      join(app, 'probe.mjs'),
      `import { createRepositoryFromUrl, createExtractorFromEnv } from '@ctx/config';
const attempt = async (build) => {
  try { const built = await build(); return { ok: true, description: built.description ?? null }; }
  catch (error) { return { ok: false, code: error.code, message: error.message }; }
};
const results = {
  memory: await attempt(async () => { const r = await createRepositoryFromUrl('memory:'); await r.close(); return r; }),
  sqlite: await attempt(() => createRepositoryFromUrl('sqlite:./ctx.db')),
  postgres: await attempt(() => createRepositoryFromUrl('postgres://localhost/ctx')),
  redis: await attempt(() => createRepositoryFromUrl('redis://localhost:6379')),
  mysql: await attempt(() => createRepositoryFromUrl('mysql://localhost/ctx')),
  openai: await attempt(() => createExtractorFromEnv({ OPENAI_API_KEY: 'sk-test' })),
  gemini: await attempt(() => createExtractorFromEnv({ GEMINI_API_KEY: 'test' })),
  extractive: await attempt(() => createExtractorFromEnv({})),
};
console.log(JSON.stringify(results));
`,
    );
  }, 120_000);

  afterAll(() => rmSync(app, { recursive: true, force: true }));

  it('works for memory: and the extractive extractor, and names what to install otherwise', async () => {
    const { stdout } = await run(process.execPath, ['probe.mjs'], { cwd: app });
    const results = JSON.parse(stdout) as Record<
      string,
      { ok: boolean; code?: string; message?: string; description?: string | null }
    >;
    expect(results.memory).toMatchObject({ ok: true });
    expect(results.extractive).toMatchObject({ ok: true });
    const expected: Record<string, string> = {
      sqlite: 'install @ctx/store-sqlite better-sqlite3',
      postgres: 'install @ctx/store-postgres typeorm pg',
      redis: 'install @ctx/store-redis ioredis',
      mysql: 'install @ctx/store-mysql mysql2',
      openai: 'install @ctx/model-openai openai',
      gemini: 'install @ctx/model-gemini @google/genai',
    };
    for (const [name, hint] of Object.entries(expected)) {
      expect(results[name], name).toMatchObject({ ok: false, code: 'INVALID_CONFIG' });
      expect(results[name]?.message, name).toContain(hint);
    }
  });
});
