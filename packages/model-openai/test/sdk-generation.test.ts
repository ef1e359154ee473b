import OpenAI from 'openai';
import type OpenAI7 from 'openai-v7';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { createOpenAIExtractor, type OpenAIExtractorClientOptions } from '../src/index.js';
import { startOpenAITestServer } from './openai-test-server.js';

// `pnpm test` runs every suite on the oldest supported `openai` major, `pnpm test:newest`
// (CTX_SDK=newest) on the newest one. These tests prove which one actually talked to the server,
// so a broken switch cannot pass silently.
const newest = process.env.CTX_SDK === 'newest';
const expectedMajor = newest ? 7 : 6;

const server = await startOpenAITestServer();
afterAll(() => server.close());

function sdkMajor(userAgent: string | undefined): number | undefined {
  const match = /OpenAI\/JS (\d+)\./.exec(userAgent ?? '');
  return match ? Number(match[1]) : undefined;
}

describe(`openai ${expectedMajor}`, () => {
  it('is the SDK that sends the requests of an extractor that creates its own client', async () => {
    server.reset();
    server.enqueue({ kind: 'output', text: '{"summary":"A short chat."}' });
    const extractor = createOpenAIExtractor({
      apiKey: 'sk-test',
      baseURL: server.baseURL,
      model: 'gpt-4.1-mini',
    });
    const result = await extractor.extract({
      previous: null,
      messages: [{ role: 'user', content: 'Hi' }],
      planning: false,
    });
    expect(result.draft.summary).toBe('A short chat.');
    expect(sdkMajor(server.requests()[0]?.headers['user-agent'])).toBe(expectedMajor);
  });

  it('is accepted as an injected client', async () => {
    server.reset();
    server.enqueue({ kind: 'output', text: '{"summary":"Injected."}' });
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: server.baseURL, maxRetries: 0 });
    const extractor = createOpenAIExtractor({ client, model: 'gpt-4.1-mini', api: 'chat' });
    const result = await extractor.extract({
      previous: null,
      messages: [{ role: 'user', content: 'Hi' }],
      planning: false,
    });
    expect(result.draft.summary).toBe('Injected.');
    expect(sdkMajor(server.requests()[0]?.headers['user-agent'])).toBe(expectedMajor);
  });

  it('accepts clients of openai 6 and 7 in the types of `client` (checked by tsc)', () => {
    // `openai` is 6 under tsconfig.json and 7 under tsconfig.newest.json; `openai-v7` is 7 in both,
    // so this also covers a client from another install than the one the adapter's types see.
    expectTypeOf<OpenAI>().toExtend<OpenAIExtractorClientOptions['client']>();
    expectTypeOf<OpenAI7>().toExtend<OpenAIExtractorClientOptions['client']>();
  });

  it.runIf(newest)('runs on a Node that the newest major supports (22 or later)', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
  });
});
