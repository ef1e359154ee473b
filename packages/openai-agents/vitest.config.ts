import { defineConfig } from 'vitest/config';

// CTX_SDK=newest runs the suites against the newest Agents SDK (the `@openai/agents-newest` dev
// alias, which brings `openai` 7) instead of the oldest supported one; `pnpm test:newest` sets it
// and runs on Node 24.
const newest = process.env.CTX_SDK === 'newest';

export default defineConfig({
  resolve: newest
    ? {
        alias: [
          { find: /^@openai\/agents(?=\/|$)/, replacement: '@openai/agents-newest' },
          { find: /^openai(?=\/|$)/, replacement: 'openai-v7' },
        ],
      }
    : {},
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
