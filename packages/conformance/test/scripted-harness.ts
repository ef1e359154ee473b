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
  parseRetryAfterHeaders,
  type ToleratedOutput,
  toTokenUsage,
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

/** The typed error for an HTTP error status, with the retry hint of `headers` or `retryAfterSeconds`. */
function httpError(
  status: number,
  headers: Record<string, string> | undefined,
  retryAfterSeconds?: number,
): ExtractionError {
  const fromHeaders = parseRetryAfterHeaders(headers ? new Headers(headers) : undefined);
  const retryAfterMs =
    fromHeaders ?? (retryAfterSeconds === undefined ? undefined : retryAfterSeconds * 1000);
  return new ExtractionError(reasonForStatus(status), `The provider answered HTTP ${status}`, {
    status,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

/**
 * The output text of a successful raw body. The scripted provider's reply format is
 * `{ "output": "<text>" }`; anything else is a retryable `server_error` that names the status and
 * content type and quotes the start of the body, as a real adapter's guard does.
 */
function outputOfRawBody(status: number, body: string, contentType: string): string {
  let parsed: unknown;
  let problem: string | undefined;
  try {
    parsed = JSON.parse(body);
  } catch {
    problem = body.trim() === '' ? 'an empty body' : 'a body that is not JSON';
  }
  const output = (parsed as { output?: unknown } | null)?.output;
  if (!problem && typeof output === 'string') return output;
  throw new ExtractionError(
    'server_error',
    `The scripted provider answered HTTP ${status} with ${problem ?? 'JSON that is not its reply'} (${contentType}, starting "${body.slice(0, 80)}")`,
    { status, retryable: true },
  );
}

/** Renames the neutral `inputTokens` / `outputTokens` of an `odd_usage` scenario into token usage. */
function usageOf(usage: unknown) {
  if (typeof usage !== 'object' || usage === null) return undefined;
  const counts = usage as { inputTokens?: unknown; outputTokens?: unknown };
  return toTokenUsage(counts.inputTokens, counts.outputTokens);
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
    const schema = getExtractionJsonSchema(request.planning, request.fields);
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
    const parse = (text: string, usage: ExtractionResult['usage']): ExtractionResult => {
      let tolerated: ToleratedOutput | undefined;
      const draft = parseExtractionOutput(text, {
        planning: request.planning,
        ...(request.fields ? { fields: request.fields } : {}),
        onTolerated: (report) => {
          tolerated = report;
        },
      });
      return { draft, ...(usage ? { usage } : {}), ...(tolerated ? { tolerated } : {}) };
    };
    switch (scenario.kind) {
      case 'output':
        return parse(scenario.text, scenario.usage);
      case 'odd_usage':
        return parse(scenario.text, usageOf(scenario.usage));
      case 'raw': {
        const status = scenario.status ?? 200;
        if (status >= 400) throw httpError(status, scenario.headers);
        const contentType = scenario.contentType ?? 'application/json';
        return parse(outputOfRawBody(status, scenario.body, contentType), undefined);
      }
      case 'refusal':
        return Promise.reject(new ExtractionError('refusal', 'The model refused to answer'));
      case 'truncated':
        throw new ExtractionError('truncated', 'The output was cut off by the token limit');
      case 'empty':
        throw new ExtractionError('empty', 'The model returned no output');
      case 'http_error':
        throw httpError(scenario.status, scenario.headers, scenario.retryAfterSeconds);
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
