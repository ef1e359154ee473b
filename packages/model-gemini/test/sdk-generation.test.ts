import { GoogleGenAI } from '@google/genai';
import type { GoogleGenAI as GoogleGenAI3 } from 'google-genai-v3';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { createGeminiExtractor, type GeminiExtractorClientOptions } from '../src/index.js';
import { geminiReplies, startGeminiServer } from './helpers/gemini-server.js';

// `pnpm test` runs every suite on the oldest supported `@google/genai` major, `pnpm test:newest`
// (CTX_SDK=newest) on the newest one. These tests prove which one actually talked to the server,
// so a broken switch cannot pass silently.
const newest = process.env.CTX_SDK === 'newest';
const expectedMajor = newest ? 3 : 2;

const server = await startGeminiServer();
afterAll(() => server.close());

function sdkMajor(header: string | string[] | undefined): number | undefined {
  const match = /google-genai-sdk\/(\d+)\./.exec(String(header ?? ''));
  return match ? Number(match[1]) : undefined;
}

const request = {
  previous: null,
  messages: [{ role: 'user' as const, content: 'Hi' }],
  planning: false,
};

describe(`@google/genai ${expectedMajor}`, () => {
  it('is the SDK that sends the requests of an extractor that creates its own client', async () => {
    server.reset();
    server.enqueue(geminiReplies.text('{"summary":"A short chat."}'));
    const extractor = createGeminiExtractor({
      apiKey: 'test-key',
      baseUrl: server.baseUrl,
      model: 'gemini-test',
    });
    const result = await extractor.extract(request);
    expect(result.draft.summary).toBe('A short chat.');
    const sent = server.requests()[0];
    expect(sdkMajor(sent?.headers['x-goog-api-client'])).toBe(expectedMajor);
    // Both majors call the same endpoint: 3 changed the SDK's default version to v1.
    expect(sent?.path).toBe('/v1beta/models/gemini-test:generateContent');
  });

  it('is accepted as an injected client, with its own API version', async () => {
    server.reset();
    server.enqueue(geminiReplies.text('{"summary":"Injected."}'));
    const client = new GoogleGenAI({
      apiKey: 'test-key',
      apiVersion: 'v1',
      httpOptions: { baseUrl: server.baseUrl },
    });
    const result = await createGeminiExtractor({ client, model: 'gemini-test' }).extract(request);
    expect(result.draft.summary).toBe('Injected.');
    const sent = server.requests()[0];
    expect(sdkMajor(sent?.headers['x-goog-api-client'])).toBe(expectedMajor);
    expect(sent?.path).toBe('/v1/models/gemini-test:generateContent');
  });

  it('accepts clients of @google/genai 2 and 3 in the types of `client` (checked by tsc)', () => {
    // `@google/genai` is 2 under tsconfig.json and 3 under tsconfig.newest.json;
    // `google-genai-v3` is 3 in both, so this also covers a client from another install.
    expectTypeOf<GoogleGenAI>().toExtend<GeminiExtractorClientOptions['client']>();
    expectTypeOf<GoogleGenAI3>().toExtend<GeminiExtractorClientOptions['client']>();
  });

  it.runIf(newest)('runs on a Node that the newest major supports (22 or later)', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
  });
});
