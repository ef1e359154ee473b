import { openai } from '@ai-sdk/openai';
import { createSessionContextMiddleware } from '@ctx/ai-sdk';
import { SessionContextStore } from '@ctx/core';
import { createOpenAIExtractor } from '@ctx/model-openai';
import { createSqliteRepository } from '@ctx/store-sqlite';
import { streamText, wrapLanguageModel } from 'ai';

const store = new SessionContextStore({
  repository: createSqliteRepository({ filename: './data/ctx.db' }),
  extractor: createOpenAIExtractor({ model: 'gpt-4.1-mini' }),
});

const model = wrapLanguageModel({
  model: openai('gpt-4.1-mini'),
  middleware: createSessionContextMiddleware({ store }),
});

const result = streamText({
  model,
  system: 'You are a helpful assistant.',
  prompt: 'Where were we?',
  providerOptions: { ctx: { sessionId: 'trip-42', userId: 'alice' } },
});
for await (const delta of result.textStream) process.stdout.write(delta);
