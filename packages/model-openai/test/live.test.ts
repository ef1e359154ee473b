import type { ExtractionRequest } from '@ctx/core';
import { describe, expect, it } from 'vitest';
import { createOpenAIExtractor, type OpenAIExtractorApi } from '../src/index.js';

// Opt-in: runs only when OPENAI_API_KEY is set (never in CI here). OPENAI_MODEL picks the model;
// OPENAI_BASE_URL (read by the SDK) points it at another OpenAI-compatible server.
const apiKey = process.env.OPENAI_API_KEY;
const model = process.env.OPENAI_MODEL || 'gpt-4.1-nano';

const request: ExtractionRequest = {
  previous: null,
  messages: [
    {
      role: 'user',
      content:
        'I want to design a REST API for my todo app. First the endpoints, then the HTTP methods, then an OpenAPI spec.',
    },
    {
      role: 'assistant',
      content:
        'Endpoints: /todos and /todos/{id}. For updates I suggest PATCH for partial changes and PUT for full replacement.',
    },
    { role: 'user', content: 'Great, endpoints are settled. Let us use PATCH only.' },
  ],
  planning: true,
};

describe.each<OpenAIExtractorApi>(['responses', 'chat'])('live OpenAI (%s API)', (api) => {
  it.runIf(Boolean(apiKey))(
    `live: extracts a planning-mode context from the real service with ${model} (set OPENAI_API_KEY to run)`,
    async () => {
      const extractor = createOpenAIExtractor({ apiKey, model, api, timeoutMs: 60_000 });
      const result = await extractor.extract(request);
      expect(result.draft.summary.length).toBeGreaterThan(20);
      expect(result.draft.summary).toMatch(/patch/i);
      expect(Array.isArray(result.draft.plan)).toBe(true);
      expect(result.draft.plan?.length).toBeGreaterThan(0);
      for (const step of result.draft.progress ?? []) {
        expect(result.draft.plan).toContain(step);
      }
      expect(result.usage?.inputTokens).toBeGreaterThan(0);
      expect(result.usage?.outputTokens).toBeGreaterThan(0);
    },
    90_000,
  );
});
