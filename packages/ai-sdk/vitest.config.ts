import { defineConfig } from 'vitest/config';

// `CTX_AI_SDK_MAJOR=7` (set by `pnpm test:newest`, on Node 24) runs the same tests against
// AI SDK 7: `ai` and `@ai-sdk/openai` resolve to the aliased devDependencies `ai-v7` and
// `ai-sdk-openai-v4`. The SQLite file needs better-sqlite3 built for the running Node (the
// workspace builds it for Node 20), so it is left out there.
const newest = process.env.CTX_AI_SDK_MAJOR === '7';

export default defineConfig({
  resolve: {
    alias: newest
      ? [
          { find: /^ai(\/.*)?$/, replacement: 'ai-v7$1' },
          { find: /^@ai-sdk\/openai$/, replacement: 'ai-sdk-openai-v4' },
        ]
      : [],
  },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: newest ? ['test/sqlite-conversation.test.ts'] : [],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    server: { deps: { inline: newest ? [/@ctx\//] : [] } },
  },
});
