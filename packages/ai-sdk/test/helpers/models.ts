// Test models of the AI SDK in use: AI SDK 6 (`ai`) by default; AI SDK 7 when vitest aliases `ai`
// to `ai-v7` (`pnpm test:newest`, on Node 24). AI SDK 7 ships MockLanguageModelV4 and
// AI SDK 6 MockLanguageModelV3; both take the same results, so the tests are written once.
import * as aiTest from 'ai/test';

type MockModelClass = typeof aiTest.MockLanguageModelV3;
type MockModel = InstanceType<MockModelClass>;
type GenerateResult = Awaited<ReturnType<MockModel['doGenerate']>>;
type StreamResult = Awaited<ReturnType<MockModel['doStream']>>;
export type StreamPart = StreamResult['stream'] extends ReadableStream<infer Part> ? Part : never;
export type CallOptions = MockModel['doGenerateCalls'][number];

const exports = aiTest as unknown as Record<string, MockModelClass | undefined>;

/** The mock language model of the AI SDK under test. */
export const MockLanguageModel: MockModelClass =
  exports.MockLanguageModelV4 ?? aiTest.MockLanguageModelV3;

/** 6 or 7: the major version of the AI SDK under test. */
export const AI_SDK_MAJOR = exports.MockLanguageModelV4 ? 7 : 6;

export const usage = () => ({
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 5, text: 5, reasoning: undefined },
});

const finish = (unified: 'stop' | 'tool-calls' | 'error') => ({ unified, raw: unified });

/** A `doGenerate` result answering `text`. */
export function textResult(text: string): GenerateResult {
  return {
    content: [{ type: 'text', text }],
    finishReason: finish('stop'),
    usage: usage(),
    warnings: [],
  };
}

/** A `doGenerate` result that calls one tool. */
export function toolCallResult(
  toolName: string,
  input: unknown,
  toolCallId = 'call-1',
): GenerateResult {
  return {
    content: [{ type: 'tool-call', toolCallId, toolName, input: JSON.stringify(input) }],
    finishReason: finish('tool-calls'),
    usage: usage(),
    warnings: [],
  };
}

/** The parts of a stream that answers `deltas` and finishes. */
export function textStreamParts(deltas: string[]): StreamPart[] {
  return [
    { type: 'stream-start', warnings: [] },
    { type: 'text-start', id: 't1' },
    ...deltas.map((delta): StreamPart => ({ type: 'text-delta', id: 't1', delta })),
    { type: 'text-end', id: 't1' },
    { type: 'finish', finishReason: finish('stop'), usage: usage() },
  ];
}

/** A `doStream` result that streams `parts`. */
export function streamResult(parts: StreamPart[]): StreamResult {
  return {
    stream: new ReadableStream<StreamPart>({
      start(controller) {
        for (const part of parts) controller.enqueue(part);
        controller.close();
      },
    }),
  };
}

/**
 * A `doStream` that behaves like a provider's HTTP stream: the test pushes parts one at a time,
 * and aborting the call's signal breaks the stream off with an `AbortError`.
 */
export function controlledStream() {
  let controller!: ReadableStreamDefaultController<StreamPart>;
  const stream = new ReadableStream<StreamPart>({
    start(value) {
      controller = value;
    },
  });
  return {
    doStream: async (options: CallOptions): Promise<StreamResult> => {
      const abort = () =>
        controller.error(new DOMException('This operation was aborted', 'AbortError'));
      if (options.abortSignal?.aborted) abort();
      else options.abortSignal?.addEventListener('abort', abort);
      return { stream };
    },
    push(part: StreamPart) {
      controller.enqueue(part);
    },
    close() {
      controller.close();
    },
  };
}
