import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// The usage block at the top of the README is test/readme-example.ts, which `pnpm typecheck`
// compiles against the real packages; this keeps the two from drifting apart.
describe('README', () => {
  it('opens with the usage example that the typecheck compiles', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const example = readFileSync(new URL('./readme-example.ts', import.meta.url), 'utf8');
    const firstBlock = readme.match(/```ts\n([\s\S]*?)```/)?.[1];
    expect(firstBlock).toBe(example);
  });
});
