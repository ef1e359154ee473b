import { pathToFileURL } from 'node:url';
import {
  type ContextExtractor,
  type ContextRepository,
  createExtractiveExtractor,
  createMemoryRepository,
  formatSessionContext,
  SessionContextStore,
} from '@ctx/core';
import { type Scenario, scenarios } from './scenarios.js';

const BASE_PROMPT = 'You are a helpful engineering assistant.';

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
  });
  write(`\n=== ${scenario.title} — session "${scenario.sessionId}" ===`);
  for (const [index, messages] of scenario.turns.entries()) {
    write(`\n--- turn ${index + 1} ---`);
    for (const message of messages) write(`${message.role}: ${message.content}`);
    const result = await store.update({
      sessionId: scenario.sessionId,
      userId: scenario.userId,
      messages,
    });
    write(`\n[stored snapshot] ${result.updated ? 'updated' : `skipped (${result.skipped})`}`);
    write(formatSessionContext(result.context));
    write('\n[system prompt for the next turn]');
    write(
      await store.buildSystemPrompt(scenario.sessionId, BASE_PROMPT, { userId: scenario.userId }),
    );
  }
}

/** Runs every scenario and returns the text it wrote. */
export async function main(write: (text: string) => void = console.log): Promise<void> {
  const repository = createMemoryRepository();
  const extractor = createExtractiveExtractor();
  write('ctx quickstart — storage: in-memory; extractor: extractive (no model, a baseline).');
  try {
    for (const scenario of scenarios) await play(scenario, repository, extractor, write);
  } finally {
    await repository.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
