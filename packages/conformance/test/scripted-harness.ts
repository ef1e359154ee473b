import {
  type ContextExtractor,
  ExtractionError,
  type ExtractionFailureReason,
  type ExtractionRequest,
  type ExtractionResult,
} from '@ctx/core';
import {
  buildExtractionPrompt,
  getExtractionJsonSchema,
  parseExtractionOutput,
} from '@ctx/core/adapter';
import type { ExtractorHarness, ProviderScenario, RecordedProviderRequest } from '../src/index.js';

/**
 * The HTTP status → failure reason mapping every model adapter implements (see
 * `ExtractionFailureReason` in core).
 */
function reasonForStatus(status: number): ExtractionFailureReason {
  if (status === 401 || status === 403) return 'authentication';
  if (status === 429) return 'rate_limit';
  if (status >= 500) return 'server_error';
  return 'bad_request';
}

/**
 * A reference {@link ExtractorHarness} without any network: the "provider" is a queue of
 * scenarios, and the extractor does what a real adapter does with each — build the prompt with
 * core's `buildExtractionPrompt`, send it with core's schema, and turn the provider's answer into a
 * draft or a typed `ExtractionError`. It proves the suite can be satisfied and documents what each
 * {@link ProviderScenario} means.
 */
export function createScriptedProviderHarness(): ExtractorHarness {
  let queue: ProviderScenario[] = [];
  let recorded: RecordedProviderRequest[] = [];
  const hanging = new Set<(error: Error) => void>();

  const call = async (
    request: ExtractionRequest,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ): Promise<ExtractionResult> => {
    if (signal?.aborted) {
      throw new ExtractionError('aborted', 'The extraction was aborted', { cause: signal.reason });
    }
    const prompt = buildExtractionPrompt(request);
    const schema = getExtractionJsonSchema(request.planning);
    const body = { model: 'scripted', system: prompt.system, user: prompt.user, schema };
    recorded.push({
      model: 'scripted',
      schema,
      strict: true,
      promptText: `${prompt.system}\n\n${prompt.user}`,
      body,
    });
    // A real provider answers asynchronously.
    await new Promise((resolve) => setImmediate(resolve));

    const scenario = queue.shift();
    if (!scenario) {
      throw new ExtractionError('unknown', 'The scripted provider has no scenario queued');
    }
    switch (scenario.kind) {
      case 'output':
        return {
          draft: parseExtractionOutput(scenario.text, { planning: request.planning }),
          ...(scenario.usage ? { usage: scenario.usage } : {}),
        };
      case 'refusal':
        return Promise.reject(new ExtractionError('refusal', 'The model refused to answer'));
      case 'truncated':
        throw new ExtractionError('truncated', 'The output was cut off by the token limit');
      case 'empty':
        throw new ExtractionError('empty', 'The model returned no output');
      case 'http_error':
        throw new ExtractionError(
          reasonForStatus(scenario.status),
          `The provider answered HTTP ${scenario.status}`,
          {
            status: scenario.status,
            ...(scenario.retryAfterSeconds === undefined
              ? {}
              : { retryAfterMs: scenario.retryAfterSeconds * 1000 }),
          },
        );
      case 'hang':
        return new Promise<never>((_, reject) => {
          const finish = (error: Error) => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
            hanging.delete(finish);
            reject(error);
          };
          const onAbort = () =>
            finish(
              new ExtractionError('aborted', 'The extraction was aborted', {
                cause: signal?.reason,
              }),
            );
          const timer =
            timeoutMs === undefined
              ? undefined
              : setTimeout(
                  () => finish(new ExtractionError('timeout', `No answer within ${timeoutMs} ms`)),
                  timeoutMs,
                );
          signal?.addEventListener('abort', onAbort, { once: true });
          hanging.add(finish);
        });
    }
  };

  return {
    name: 'scripted reference provider',
    createExtractor(options): ContextExtractor {
      return {
        extract: (request, callOptions) => call(request, callOptions?.signal, options?.timeoutMs),
      };
    },
    enqueue(...scenarios) {
      queue.push(...scenarios);
    },
    requests() {
      return [...recorded];
    },
    reset() {
      queue = [];
      recorded = [];
      for (const finish of [...hanging]) {
        finish(new ExtractionError('network', 'The scripted provider was reset'));
      }
    },
  };
}
