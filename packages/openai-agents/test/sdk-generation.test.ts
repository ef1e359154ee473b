import { VERSION } from 'openai/version';
import { expect, it } from 'vitest';

// `test` runs on Node 20 with @openai/agents 0.14 and openai 6; `test:newest` (CTX_SDK=newest) on
// Node 24 with the newest @openai/agents and openai 7. This checks the run is the one it claims.
it('runs against the SDK generation it was asked for', () => {
  const newest = process.env.CTX_SDK === 'newest';
  expect(VERSION.split('.')[0]).toBe(newest ? '7' : '6');
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  expect(newest ? nodeMajor >= 22 : nodeMajor >= 20).toBe(true);
});
