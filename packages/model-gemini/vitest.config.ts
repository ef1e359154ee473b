import { defineConfig } from 'vitest/config';

// CTX_SDK=newest runs the suites against the newest `@google/genai` major (the `google-genai-v3`
// dev alias) instead of the oldest supported one; `pnpm test:newest` sets it and runs on Node 24.
const newest = process.env.CTX_SDK === 'newest';

export default defineConfig({
  resolve: newest
    ? { alias: [{ find: /^@google\/genai(?=\/|$)/, replacement: 'google-genai-v3' }] }
    : {},
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
