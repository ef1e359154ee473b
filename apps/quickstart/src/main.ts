import { mkdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createExtractorFromEnv, createRepositoryFromUrl, redactStoreUrl } from '@ctx/config';
import {
  type ContextExtractor,
  type ContextRepository,
  formatSessionContext,
  SessionContextStore,
} from '@ctx/core';
import { type Scenario, scenarios } from './scenarios.js';

const BASE_PROMPT = 'You are a helpful engineering assistant.';

/** The app's own data folder: `apps/quickstart/data`. */
const DATA_DIR = fileURLToPath(new URL('../data/', import.meta.url));

async function play(
  scenario: Scenario,
  repository: ContextRepository,
  extractor: ContextExtractor,
  write: (text: string) => void,
) {
  const store = new SessionContextStore({
    repository,
    extractor,
    config: { enablePlanning: scenario.planning },
    ...(scenario.fields ? { fields: scenario.fields } : {}),
  });
  // Each run replays the scenario from the start.
  await store.delete(scenario.sessionId);
  write(`\n=== ${scenario.title}: session "${scenario.sessionId}" ===`);
  for (const [index, messages] of scenario.turns.entries()) {
    write(`\n--- turn ${index + 1} ---`);
    for (const message of messages) write(`${message.role}: ${message.content}`);
    const result = await store.update({
      sessionId: scenario.sessionId,
      userId: scenario.userId,
      messages,
    });
    const tokens = result.usage
      ? `, ${result.usage.inputTokens} input / ${result.usage.outputTokens} output tokens`
      : '';
    write(
      `\n[stored snapshot] ${result.updated ? `updated${tokens}` : `skipped (${result.skipped})`}`,
    );
    write(formatSessionContext(result.context, { fields: scenario.fields ?? null }));
    write('\n[system prompt for the next turn]');
    write(
      await store.buildSystemPrompt(scenario.sessionId, BASE_PROMPT, { userId: scenario.userId }),
    );
  }
}

/**
 * Plays both reference scenarios on the store named by `CTX_STORE_URL` (default: a SQLite file in
 * the app's data folder) with the extractor the environment selects.
 */
export async function main(
  env: Record<string, string | undefined> = process.env,
  write: (text: string) => void = console.log,
): Promise<void> {
  let storeUrl = env.CTX_STORE_URL;
  if (!storeUrl) {
    mkdirSync(DATA_DIR, { recursive: true });
    storeUrl = `sqlite:${DATA_DIR}quickstart.db`;
  }
  const { extractor, description } = await createExtractorFromEnv(env);
  const repository = await createRepositoryFromUrl(storeUrl);
  write(`ctx quickstart`);
  write(`store:     ${redactStoreUrl(storeUrl)}`);
  write(`extractor: ${description}`);
  try {
    for (const scenario of scenarios) await play(scenario, repository, extractor, write);
  } finally {
    await repository.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(`quickstart: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
