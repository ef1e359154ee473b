import {
  type ContextExtractor,
  ExtractionError,
  type ExtractionFailureReason,
  type ExtractionRequest,
  type ExtractionResult,
  type Message,
} from '@ctx/core';
import { expect, it } from 'vitest';
import { describeError, expectContextError, fail } from './assertions.js';
import type { ExtractorHarness, ProviderScenario, RecordedProviderRequest } from './harness.js';
import { randomId } from './random.js';

const DEFAULT_TIMEOUT_MS = 30_000;

/** A two-message conversation whose texts carry `token`, so prompts can be searched for it. */
export function conversation(token: string): Message[] {
  return [
    { role: 'user', content: `Let's design the REST API for the todo app (${token}-user).` },
    {
      role: 'assistant',
      content: `Sure: resources /todos and /todos/{id}; PATCH for partial updates (${token}-assistant).`,
    },
  ];
}

/** A summary-mode request for a new session. */
export function summaryRequest(token = randomId('turn')): ExtractionRequest {
  return { previous: null, messages: conversation(token), planning: false };
}

/** What every group of the extractor suite uses to drive the harness and check its answers. */
export interface ExtractorTools {
  harness: ExtractorHarness;
  /** Registers a test with the harness's time limit. */
  test(name: string, body: () => Promise<void>): void;
  /** The last request the simulated provider received; fails when it received none. */
  lastRequest(): RecordedProviderRequest;
  /** Runs one extraction against `scenario`; checks that at most one provider call was made. */
  run(
    scenario: ProviderScenario,
    request: ExtractionRequest,
    extractor?: ContextExtractor,
    signal?: AbortSignal,
  ): Promise<ExtractionResult>;
  /** Expects `action` to fail with an `EXTRACTION_FAILED` error of `reason`; returns the error. */
  expectExtractionError(
    action: () => Promise<unknown>,
    reason: ExtractionFailureReason,
    what: string,
  ): Promise<ExtractionError>;
}

/** The {@link ExtractorTools} for `harness`. */
export function extractorTools(harness: ExtractorHarness): ExtractorTools {
  const timeout = harness.testTimeoutMs ?? DEFAULT_TIMEOUT_MS;

  const run: ExtractorTools['run'] = async (scenario, request, extractor, signal) => {
    const before = harness.requests().length;
    harness.enqueue(scenario);
    const target = extractor ?? (await harness.createExtractor());
    try {
      return await target.extract(request, signal ? { signal } : undefined);
    } finally {
      expect(
        harness.requests().length - before,
        'provider calls for one extraction: the extractor must not retry on its own (create it with SDK retries off)',
      ).toBeLessThanOrEqual(1);
    }
  };

  const expectExtractionError: ExtractorTools['expectExtractionError'] = async (
    action,
    reason,
    what,
  ) => {
    const error = await expectContextError(action, 'EXTRACTION_FAILED', what);
    expect(ExtractionError.isInstance(error), `${what}: an ExtractionError`).toBe(true);
    const extraction = error as ExtractionError;
    expect(extraction.reason, `${what}: ${describeError(error)}`).toBe(reason);
    expect(typeof extraction.retryable, 'retryable is a boolean').toBe('boolean');
    return extraction;
  };

  return {
    harness,
    test: (name, body) => it(name, body, timeout),
    lastRequest: () => {
      const requests = harness.requests();
      const last = requests[requests.length - 1];
      if (!last) fail('the simulated provider received no request');
      return last;
    },
    run,
    expectExtractionError,
  };
}
