import { describe, expect, it } from 'vitest';
import { toTokenUsage } from '../src/adapter/index.js';
import { createMemoryRepository, SessionContextStore } from '../src/index.js';
import { createScriptedExtractor } from '../src/testing/index.js';

describe('token usage', () => {
  it('takes non-negative integer counts and nothing else', () => {
    expect(toTokenUsage(12, 3)).toEqual({ inputTokens: 12, outputTokens: 3 });
    expect(toTokenUsage(0, 0)).toEqual({ inputTokens: 0, outputTokens: 0 });
    for (const bad of ['12', -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, null, undefined]) {
      expect(toTokenUsage(bad, 3)).toBeUndefined();
      expect(toTokenUsage(3, bad)).toBeUndefined();
    }
  });

  it('keeps string counts of an extractor out of the store totals', async () => {
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({
        replies: [
          {
            draft: { summary: 'S' },
            usage: { inputTokens: '12', outputTokens: '3' } as unknown as {
              inputTokens: number;
              outputTokens: number;
            },
          },
        ],
      }),
    });
    const result = await store.update({
      sessionId: 'usage-strings',
      messages: [{ role: 'user', content: 'Hello' }],
    });
    expect(result.updated).toBe(true);
    expect(result.usage).toBeUndefined();
  });
});
