import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ProviderScenario, RecordedProviderRequest } from '@ctx/conformance';

/**
 * A simulated Gemini API (`POST /{version}/models/{model}:generateContent`) for tests, on
 * 127.0.0.1 and a random port. Bodies follow the Gemini API reference: `GenerateContentResponse`
 * (`candidates[].content.parts[].text`, `finishReason`, `promptFeedback.blockReason`,
 * `usageMetadata`) and Google's error envelope `{ error: { code, message, status, details } }`.
 * Point the SDK at {@link GeminiTestServer.baseUrl} with `httpOptions.baseUrl`.
 */
export interface GeminiTestServer {
  /** Base URL without API version, e.g. `http://127.0.0.1:41234`. */
  readonly baseUrl: string;
  /** Queue what the next calls get, in order. A call with nothing queued gets a 500. */
  enqueue(...replies: Array<GeminiReply | ProviderScenario>): void;
  /** Requests received so far, oldest first. */
  requests(): RecordedGeminiRequest[];
  /** Forget queued replies and recorded requests; drop calls left hanging. */
  reset(): void;
  close(): Promise<void>;
}

/** One scripted HTTP reply. */
export interface GeminiReply {
  status: number;
  /** JSON body (serialised with `content-type: application/json; charset=UTF-8`). */
  body?: unknown;
  /** Raw body text, sent instead of `body` (for malformed or non-JSON replies). */
  rawBody?: string;
  /** Content type of `rawBody`. @default 'text/plain' */
  contentType?: string;
  headers?: Record<string, string>;
  /** Never answer: the call stays open until the client gives up. */
  hang?: boolean;
  /** Send the status, headers and the first half of the body, then stall until the client gives up. */
  stallBody?: boolean;
  /** Wait this long before answering. */
  delayMs?: number;
}

/** A request as the simulated server received it. */
export interface RecordedGeminiRequest {
  method: string;
  /** Path without query string, e.g. `/v1beta/models/gemini-test:generateContent`. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (a `GenerateContentRequest`). */
  body: GenerateContentRequestBody;
  /** The model id from the path (without `models/`). */
  model: string;
}

/** The parts of `GenerateContentRequest` the tests look at. */
export interface GenerateContentRequestBody {
  contents?: Array<{ role?: string; parts?: Array<{ text?: string }> }>;
  systemInstruction?: { role?: string; parts?: Array<{ text?: string }> };
  generationConfig?: {
    responseMimeType?: string;
    responseJsonSchema?: unknown;
    responseSchema?: unknown;
    maxOutputTokens?: number;
    temperature?: number;
    thinkingConfig?: unknown;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  408: 'DEADLINE_EXCEEDED',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

const STATUS_MESSAGES: Record<number, string> = {
  400: 'Request contains an invalid argument.',
  401: 'Request had invalid authentication credentials.',
  403: 'The caller does not have permission',
  404: 'models/unknown is not found for API version v1beta, or is not supported for generateContent.',
  429: 'You exceeded your current quota, please check your plan and billing details.',
  500: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  503: 'The model is overloaded. Please try again later.',
};

/** Builders for replies shaped like the Gemini API's. */
export const geminiReplies = {
  /** A complete answer whose only part is `text`. */
  text(
    text: string,
    usage: { inputTokens: number; outputTokens: number; thoughtsTokens?: number } = {
      inputTokens: 120,
      outputTokens: 40,
    },
  ): GeminiReply {
    return geminiReplies.candidate({ parts: [{ text }], finishReason: 'STOP', usage });
  },
  /** An answer with explicit parts and finish reason. */
  candidate(options: {
    parts?: Array<{ text?: string; thought?: boolean }>;
    finishReason?: string;
    usage?: { inputTokens: number; outputTokens: number; thoughtsTokens?: number };
  }): GeminiReply {
    const usage = options.usage ?? { inputTokens: 120, outputTokens: 40 };
    return {
      status: 200,
      body: {
        candidates: [
          {
            content: options.parts ? { parts: options.parts, role: 'model' } : { role: 'model' },
            ...(options.finishReason ? { finishReason: options.finishReason } : {}),
            index: 0,
          },
        ],
        usageMetadata: {
          promptTokenCount: usage.inputTokens,
          candidatesTokenCount: usage.outputTokens,
          ...(usage.thoughtsTokens ? { thoughtsTokenCount: usage.thoughtsTokens } : {}),
          totalTokenCount: usage.inputTokens + usage.outputTokens + (usage.thoughtsTokens ?? 0),
        },
        modelVersion: 'gemini-test-001',
        responseId: `resp-${Math.random().toString(36).slice(2)}`,
      },
    };
  },
  /** The prompt itself was blocked: no candidates, `promptFeedback.blockReason` set. */
  blockedPrompt(blockReason = 'SAFETY'): GeminiReply {
    return {
      status: 200,
      body: {
        promptFeedback: {
          blockReason,
          safetyRatings: [
            { category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH', blocked: true },
          ],
        },
        usageMetadata: { promptTokenCount: 120, totalTokenCount: 120 },
        modelVersion: 'gemini-test-001',
      },
    };
  },
  /** A Google error envelope; 429 carries a `google.rpc.RetryInfo` when `retryDelay` is given. */
  error(
    status: number,
    options: {
      message?: string;
      retryDelay?: string;
      headers?: Record<string, string>;
      details?: unknown[];
    } = {},
  ): GeminiReply {
    const details = [...(options.details ?? [])];
    if (options.retryDelay !== undefined) {
      details.push({
        '@type': 'type.googleapis.com/google.rpc.RetryInfo',
        retryDelay: options.retryDelay,
      });
    }
    return {
      status,
      ...(options.headers === undefined ? {} : { headers: options.headers }),
      body: {
        error: {
          code: status,
          message: options.message ?? STATUS_MESSAGES[status] ?? 'Error',
          status: STATUS_NAMES[status] ?? 'UNKNOWN',
          ...(details.length > 0 ? { details } : {}),
        },
      },
    };
  },
  /** What the Gemini API answers to an invalid key: HTTP 400 with `ErrorInfo.reason: API_KEY_INVALID`. */
  invalidApiKey(): GeminiReply {
    return geminiReplies.error(400, {
      message: 'API key not valid. Please pass a valid API key.',
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'API_KEY_INVALID',
          domain: 'googleapis.com',
          metadata: { service: 'generativelanguage.googleapis.com' },
        },
      ],
    });
  },
} as const;

/** Translates a conformance-suite scenario into the Gemini wire format. */
export function scenarioToReply(scenario: ProviderScenario): GeminiReply {
  switch (scenario.kind) {
    case 'output':
      return geminiReplies.text(scenario.text, scenario.usage);
    case 'refusal':
      return geminiReplies.blockedPrompt('SAFETY');
    case 'truncated':
      return geminiReplies.candidate({
        parts: [{ text: scenario.text ?? '{"summary": "The user and the assistant' }],
        finishReason: 'MAX_TOKENS',
      });
    case 'empty':
      return geminiReplies.candidate({ finishReason: 'STOP' });
    case 'http_error':
      return geminiReplies.error(scenario.status, {
        ...(scenario.retryAfterSeconds === undefined
          ? {}
          : { retryDelay: `${scenario.retryAfterSeconds}s` }),
        ...(scenario.headers === undefined ? {} : { headers: scenario.headers }),
      });
    case 'hang':
      return { status: 200, hang: true };
    case 'raw':
      return {
        status: scenario.status ?? 200,
        rawBody: scenario.body,
        contentType: scenario.contentType ?? 'application/json',
        ...(scenario.headers === undefined ? {} : { headers: scenario.headers }),
      };
    case 'odd_usage': {
      const reply = geminiReplies.text(scenario.text);
      return {
        ...reply,
        body: { ...(reply.body as object), usageMetadata: wireUsage(scenario.usage) },
      };
    }
  }
}

/** An `odd_usage` scenario's usage as `usageMetadata`: Gemini's key names, values untouched. */
function wireUsage(usage: unknown): unknown {
  if (typeof usage !== 'object' || usage === null) return usage;
  const { inputTokens, outputTokens } = usage as { inputTokens?: unknown; outputTokens?: unknown };
  return {
    ...(inputTokens === undefined ? {} : { promptTokenCount: inputTokens }),
    ...(outputTokens === undefined ? {} : { candidatesTokenCount: outputTokens }),
  };
}

function isScenario(value: GeminiReply | ProviderScenario): value is ProviderScenario {
  return 'kind' in value;
}

const GENERATE_CONTENT_PATH = /^\/(v1beta|v1|v1alpha)\/models\/([^/:]+):generateContent$/;

/** Starts a simulated Gemini API on 127.0.0.1 and a random port. */
export async function startGeminiServer(): Promise<GeminiTestServer> {
  const queue: GeminiReply[] = [];
  const recorded: RecordedGeminiRequest[] = [];
  const hanging = new Set<ServerResponse>();
  const sockets = new Set<Socket>();

  const send = (response: ServerResponse, reply: GeminiReply) => {
    const headers: Record<string, string> = { ...reply.headers };
    let payload = '';
    if (reply.rawBody !== undefined) {
      payload = reply.rawBody;
      headers['content-type'] = reply.contentType ?? 'text/plain';
    } else if (reply.body !== undefined) {
      payload = JSON.stringify(reply.body);
      headers['content-type'] = 'application/json; charset=UTF-8';
    }
    response.writeHead(reply.status, headers);
    if (reply.stallBody) {
      response.write(payload.slice(0, Math.floor(payload.length / 2)));
      hanging.add(response);
      response.on('close', () => hanging.delete(response));
      return;
    }
    response.end(payload);
  };

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = (request.url ?? '').split('?')[0] ?? '';
      const match = GENERATE_CONTENT_PATH.exec(path);
      if (request.method !== 'POST' || !match) {
        send(
          response,
          geminiReplies.error(404, { message: `No route for ${request.method} ${path}` }),
        );
        return;
      }
      let body: GenerateContentRequestBody;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as GenerateContentRequestBody;
      } catch {
        send(response, geminiReplies.error(400, { message: 'Invalid JSON payload received.' }));
        return;
      }
      recorded.push({
        method: request.method,
        path,
        headers: request.headers,
        body,
        model: decodeURIComponent(match[2] ?? ''),
      });
      const reply = queue.shift() ?? {
        ...geminiReplies.error(500, { message: 'test server: no reply queued for this call' }),
      };
      if (reply.hang) {
        hanging.add(response);
        response.on('close', () => hanging.delete(response));
        return;
      }
      if (reply.delayMs) {
        setTimeout(() => send(response, reply), reply.delayMs);
        return;
      }
      send(response, reply);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    enqueue(...replies) {
      for (const reply of replies) queue.push(isScenario(reply) ? scenarioToReply(reply) : reply);
    },
    requests: () => [...recorded],
    reset() {
      queue.length = 0;
      recorded.length = 0;
      for (const response of hanging) response.destroy();
      hanging.clear();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

/** All prompt text of a request (system instruction, then contents), for content assertions. */
export function promptTextOf(body: GenerateContentRequestBody): string {
  const system = (body.systemInstruction?.parts ?? []).map((part) => part.text ?? '');
  const contents = (body.contents ?? []).flatMap((content) =>
    (content.parts ?? []).map((part) => part.text ?? ''),
  );
  return [...system, ...contents].join('\n');
}

/** A recorded request in the conformance suite's provider-neutral shape. */
export function toRecordedProviderRequest(request: RecordedGeminiRequest): RecordedProviderRequest {
  return {
    model: request.model,
    schema: request.body.generationConfig?.responseJsonSchema,
    strict: undefined,
    promptText: promptTextOf(request.body),
    body: request.body,
  };
}
