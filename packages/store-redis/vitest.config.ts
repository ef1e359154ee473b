import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Stopping the shared Redis server would break every other suite: the fault tests run alone,
    // through `pnpm test:faults` (vitest.faults.config.ts), after all other suites.
    exclude: ['test/faults/**', '**/node_modules/**'],
    // Files share one Redis server and some tests time TTLs: one file at a time keeps them exact.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
