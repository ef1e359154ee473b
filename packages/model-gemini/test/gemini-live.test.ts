import { describe, expect, it } from 'vitest';
import { createGeminiExtractor } from '../src/index.js';

const apiKey = process.env.GEMINI_API_KEY;
const model = process.env.GEMINI_MODEL || 'gemini-3.1-flash-lite';

describe('live Gemini API (opt-in: set GEMINI_API_KEY, optionally GEMINI_MODEL)', () => {
  it.runIf(Boolean(apiKey))(
    `extracts a planning snapshot with ${model} against the real service`,
    async () => {
      const extractor = createGeminiExtractor({ apiKey, model, timeoutMs: 60_000 });
      const result = await extractor.extract({
        previous: null,
        planning: true,
        messages: [
          {
            role: 'user',
            content:
              'I want to plan a 3-day trip to Lisbon in May. Budget is 900 EUR. I already booked the flight.',
          },
          {
            role: 'assistant',
            content:
              'Great. Plan: 1) book a hotel in Alfama, 2) plan day trips to Sintra and Cascais, 3) reserve a fado dinner. The flight is done.',
          },
        ],
      });
      expect(result.draft.summary.length).toBeGreaterThan(20);
      expect(result.draft.summary).toMatch(/lisbon/i);
      expect(result.draft.goal ?? '').toMatch(/lisbon/i);
      expect(result.draft.plan?.length ?? 0).toBeGreaterThanOrEqual(2);
      for (const step of result.draft.progress ?? []) {
        expect(result.draft.plan).toContain(step);
      }
      expect(result.usage?.inputTokens).toBeGreaterThan(100);
      expect(result.usage?.outputTokens).toBeGreaterThan(0);
    },
    90_000,
  );
});
