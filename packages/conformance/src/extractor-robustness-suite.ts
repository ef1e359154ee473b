import {
  createMemoryRepository,
  MAX_RETRY_AFTER_MS,
  type SessionContextEvent,
  SessionContextStore,
} from '@ctx/core';
import { describe, expect } from 'vitest';
import { type ExtractorTools, summaryRequest } from './extractor-tools.js';
import type { ProviderScenario } from './harness.js';
import { randomId } from './random.js';

// What a real deployment sends an extractor besides well-formed replies: a proxy's HTML page with
// status 200, a body cut off in transit, token counts as strings, absurd retry hints, and loose
// local models that add empty keys to the JSON they were asked for.

/** The end of {@link HTML_PAGE}: an error message must quote the page's start, not all of it. */
const HTML_TAIL = 'upstream-detail-that-must-not-be-quoted';

const HTML_PAGE = `<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>The proxy could not reach the upstream.</p>${'<p>Please try again later.</p>'.repeat(20)}<!-- ${HTML_TAIL} --></body></html>`;

/** 200 replies whose body is not a provider reply at all. */
const NOT_THE_REPLY: Array<{ name: string; body: string; contentType: string }> = [
  { name: 'an HTML page from a proxy', body: HTML_PAGE, contentType: 'text/html; charset=utf-8' },
  { name: 'an HTML page labelled as JSON', body: HTML_PAGE, contentType: 'application/json' },
  {
    name: 'JSON cut off in the middle',
    body: '{"id":"reply_1","output":[{"content":[{"text":"{\\"summ',
    contentType: 'application/json',
  },
  { name: 'an empty body', body: '', contentType: 'application/json' },
  { name: 'a JSON array', body: '[]', contentType: 'application/json' },
  { name: 'a JSON string', body: '"ok"', contentType: 'application/json' },
  { name: 'JSON null', body: 'null', contentType: 'application/json' },
];

/**
 * Token usage that is not two non-negative integers, in the suite's neutral names. A missing count
 * is not among them: what it means is the provider's (Gemini leaves out zero counts).
 */
const ODD_USAGE: Array<{ name: string; usage: unknown }> = [
  { name: 'strings', usage: { inputTokens: '12', outputTokens: '3' } },
  { name: 'one string', usage: { inputTokens: 12, outputTokens: '3' } },
  { name: 'negative', usage: { inputTokens: -1, outputTokens: 3 } },
  { name: 'fractions', usage: { inputTokens: 1.5, outputTokens: 3 } },
  { name: 'not an object', usage: 'lots' },
];

/** Retry hints far beyond any sensible wait. */
const ABSURD_RETRY_HEADERS: Array<{ name: string; headers: Record<string, string> }> = [
  { name: 'retry-after of 10^23 seconds', headers: { 'retry-after': `1${'0'.repeat(23)}` } },
  { name: 'retry-after-ms of 10^30', headers: { 'retry-after-ms': `1${'0'.repeat(30)}` } },
  {
    name: 'retry-after as an HTTP date in the year 9999',
    headers: { 'retry-after': 'Fri, 31 Dec 9999 23:59:59 GMT' },
  },
];

const LOOSE_SUMMARY = 'The user plans a trip to Lisbon in May.';
const LOOSE_OUTPUT = JSON.stringify({ summary: LOOSE_SUMMARY, goal: null, plan: null });

/** Messages an internal TypeError from parsing an unexpected body would carry. */
const INTERNAL_ERROR = /Cannot use 'in' operator|Cannot read properties|is not a function/;

/**
 * The robustness groups of the extractor suite, registered inside its top-level `describe`: bodies
 * that are not the provider's JSON, token usage that is not numbers, absurd retry hints, and
 * output with empty extra keys.
 */
export function describeExtractorRobustness(tools: ExtractorTools): void {
  const { harness, test, run, expectExtractionError } = tools;

  describe('a 200 reply that is not the provider JSON', () => {
    for (const { name, body, contentType } of NOT_THE_REPLY) {
      test(`${name} fails as a retryable server_error with a clear message`, async () => {
        const error = await expectExtractionError(
          () => run({ kind: 'raw', status: 200, body, contentType }, summaryRequest()),
          'server_error',
          `a 200 reply with ${name}`,
        );
        expect(error.retryable, 'retryable').toBe(true);
        expect(error.status, 'status').toBe(200);
        expect(error.message, 'the message names the status').toMatch(/HTTP 200/);
        expect(error.message, 'an internal error escaped').not.toMatch(INTERNAL_ERROR);
      });
    }

    test('the message names the content type and quotes only the start of an HTML body', async () => {
      const error = await expectExtractionError(
        () =>
          run(
            { kind: 'raw', status: 200, body: HTML_PAGE, contentType: 'text/html' },
            summaryRequest(),
          ),
        'server_error',
        'a 200 reply with an HTML page',
      );
      expect(error.message).toContain('text/html');
      expect(error.message).toContain('502 Bad Gateway');
      expect(error.message, 'the whole page is quoted').not.toContain(HTML_TAIL);
    });
  });

  describe('token usage', () => {
    for (const { name, usage } of ODD_USAGE) {
      test(`counts that are ${name} are ignored, and the extraction is kept`, async () => {
        const result = await run(
          { kind: 'odd_usage', text: '{"summary":"Trip to Lisbon."}', usage },
          summaryRequest(),
        );
        expect(result.draft).toEqual({ summary: 'Trip to Lisbon.' });
        expect(result.usage, 'usage from counts that are not numbers').toBeUndefined();
      });
    }

    test('string counts are never concatenated into the store totals', async () => {
      harness.enqueue({
        kind: 'odd_usage',
        text: '{"summary":"Trip to Lisbon."}',
        usage: { inputTokens: '12', outputTokens: '3' },
      });
      const store = new SessionContextStore({
        repository: createMemoryRepository(),
        extractor: await harness.createExtractor(),
      });
      try {
        const result = await store.update({
          sessionId: randomId('usage'),
          messages: summaryRequest().messages,
        });
        expect(result.updated).toBe(true);
        expect(result.usage).toBeUndefined();
      } finally {
        await store.close();
      }
    });
  });

  describe('retry hints are clamped to MAX_RETRY_AFTER_MS', () => {
    for (const { name, headers } of ABSURD_RETRY_HEADERS) {
      test(`${name} on a 429 and a 503`, async () => {
        const limited = await expectExtractionError(
          () => run({ kind: 'http_error', status: 429, headers }, summaryRequest()),
          'rate_limit',
          `HTTP 429 with ${name}`,
        );
        expect(limited.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
        expect(limited.message, 'an unclamped number in the message').not.toMatch(/e\+/);
        const overloaded = await expectExtractionError(
          () => run({ kind: 'http_error', status: 503, headers }, summaryRequest()),
          'server_error',
          `HTTP 503 with ${name}`,
        );
        expect(overloaded.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
        expect(overloaded.message, 'an unclamped number in the message').not.toMatch(/e\+/);
      });
    }
  });

  describe('a loose model that adds empty keys', () => {
    test('"goal": null, "plan": null in summary mode is tolerated and reported', async () => {
      const result = await run({ kind: 'output', text: LOOSE_OUTPUT }, summaryRequest());
      expect(result.draft).toEqual({ summary: LOOSE_SUMMARY });
      expect(result.tolerated).toEqual({ droppedKeys: ['goal', 'plan'] });
    });

    test('the store updates on every turn and reports extraction-tolerated', async () => {
      const events: SessionContextEvent[] = [];
      const store = new SessionContextStore({
        repository: createMemoryRepository(),
        extractor: await harness.createExtractor(),
        config: { onEvent: (event) => events.push(event) },
      });
      const sessionId = randomId('loose');
      harness.enqueue(
        { kind: 'output', text: LOOSE_OUTPUT },
        {
          kind: 'output',
          text: '{"summary":"Lisbon in May, flights booked.","goal":null,"plan":[],"progress":[]}',
        },
      );
      try {
        const first = await store.update({ sessionId, messages: summaryRequest().messages });
        const second = await store.update({
          sessionId,
          messages: [{ role: 'user', content: 'I booked the flights.' }],
        });
        expect(first.context?.summary).toBe(LOOSE_SUMMARY);
        expect(second.context?.summary).toBe('Lisbon in May, flights booked.');
        expect(second.context?.version).toBe(2);
      } finally {
        await store.close();
      }
      expect(events.filter((event) => event.type === 'extraction-tolerated')).toEqual([
        {
          type: 'extraction-tolerated',
          sessionId,
          droppedKeys: ['goal', 'plan'],
          background: false,
        },
        {
          type: 'extraction-tolerated',
          sessionId,
          droppedKeys: ['goal', 'plan', 'progress'],
          background: false,
        },
      ]);
    });

    test('a non-empty plan in summary mode is still refused', async () => {
      const outputs: ProviderScenario[] = [
        { kind: 'output', text: '{"summary":"Lisbon.","plan":["Book flights"]}' },
        { kind: 'output', text: '{"summary":"Lisbon.","goal":null,"plan":["Book flights"]}' },
      ];
      for (const scenario of outputs) {
        const error = await expectExtractionError(
          () => run(scenario, summaryRequest()),
          'schema_mismatch',
          'a plan with steps in summary mode',
        );
        expect(error.message, 'the message names the refused key').toContain('"plan"');
      }
    });
  });
}
