import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The quick benchmark run talks to the real PostgreSQL and Redis and takes a few seconds.
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
