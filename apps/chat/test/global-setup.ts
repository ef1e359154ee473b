import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type { TestProject } from 'vitest/node';

/** Builds the app's `dist/` once before the test files spawn `node dist/main.js`. */
export function setup(project: TestProject): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    cwd: project.config.root,
    stdio: 'inherit',
  });
}
