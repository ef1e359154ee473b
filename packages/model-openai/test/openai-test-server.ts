/**
 * A local HTTP server that speaks the subset of the OpenAI wire protocol the extractor uses:
 * `POST /v1/responses` and `POST /v1/chat/completions`, with response objects and error bodies
 * shaped as in OpenAI's API reference. Tests script what it answers (one scenario per request),
 * point the real `openai` SDK at `baseURL`, and read back the requests it received.
 *
 * Reusable: nothing here depends on the extractor, so sample apps can simulate OpenAI the same way.
 */
import { randomBytes } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ProviderScenario, RecordedProviderRequest } from '@ctx/conformance';

/** Token counts reported in `usage`. */
export interface ScenarioUsage {
  inputTokens: number;
  outputTokens: number;
}

/**
 * What the server does with one request, besides the conformance suite's {@link ProviderScenario}s
 * (`raw` sends a body byte for byte; `odd_usage` renames `inputTokens` / `outputTokens` to
 * `input_tokens` / `output_tokens` on the Responses API and `prompt_tokens` /
 * `completion_tokens` on Chat Completions).
 */
export type OpenAIScenario =
  /** The model's output text (`output_text` / `message.content`), completed normally. */
  | { kind: 'output'; text: string; usage?: ScenarioUsage }
  /** A refusal content item (Responses) or `message.refusal` (Chat Completions). */
  | { kind: 'refusal'; text?: string }
  /**
   * Cut-off output: `status: 'incomplete'` with `incomplete_details.reason` (Responses) or
   * `finish_reason: 'length' | 'content_filter'` (Chat Completions).
   */
  | { kind: 'truncated'; text?: string; reason?: 'max_output_tokens' | 'content_filter' }
  /** A completed reply whose text is empty. */
  | { kind: 'empty' }
  /** An HTTP error with OpenAI's error body `{ error: { message, type, param, code } }`. */
  | {
      kind: 'http_error';
      status: number;
      retryAfterSeconds?: number;
      message?: string;
      type?: string;
      code?: string | null;
      param?: string | null;
      headers?: Record<string, string>;
    }
  /** A Responses API reply with `status: 'failed'` and an `error` object. */
  | { kind: 'failed'; code: string; message: string }
  /** The suite's byte-for-byte body and its token usage with odd values (see above). */
  | Extract<ProviderScenario, { kind: 'raw' | 'odd_usage' }>
  /** Any status, body and headers, sent as JSON. */
  | { kind: 'raw_json'; status?: number; body: unknown; headers?: Record<string, string> }
  /** Never answers (until the client gives up). */
  | { kind: 'hang' }
  /** Sends status and headers, then never finishes the body. */
  | { kind: 'hang_after_headers' }
  /** Drops the connection without answering. */
  | { kind: 'drop_connection' };

/** Which endpoint a request hit. */
export type OpenAIEndpoint = 'responses' | 'chat';

/** One request the server received, decoded for assertions. */
export interface RecordedOpenAIRequest extends RecordedProviderRequest {
  endpoint: OpenAIEndpoint;
  path: string;
  headers: IncomingHttpHeaders;
  /** `text.format` (Responses) or `response_format` (Chat Completions), as sent. */
  format: { type?: string; name?: string; schema?: unknown; strict?: boolean } | undefined;
  /** The system prompt: `instructions` (Responses) or the system message (Chat Completions). */
  system: string;
  /** The user prompt: the user input item (Responses) or the user message (Chat Completions). */
  user: string;
}

/** A running simulated OpenAI server. */
export interface OpenAITestServer {
  /** `http://127.0.0.1:<port>/v1`, ready for the SDK's `baseURL`. */
  readonly baseURL: string;
  /** Queues what the next requests get, in order. */
  enqueue(...scenarios: (OpenAIScenario | ProviderScenario)[]): void;
  /** Requests received so far, oldest first. */
  requests(): RecordedOpenAIRequest[];
  /** Scenarios not used yet. */
  pending(): number;
  /** Forgets queued scenarios and recorded requests, and drops hanging connections. */
  reset(): void;
  /** Stops the server and drops every connection. */
  close(): Promise<void>;
}

const ERROR_BODIES: Record<number, { message: string; type: string; code: string | null }> = {
  400: {
    message: "Invalid value for 'input': the request could not be processed.",
    type: 'invalid_request_error',
    code: null,
  },
  401: {
    message:
      'Incorrect API key provided: sk-test****. You can find your API key at https://platform.openai.com/account/api-keys.',
    type: 'invalid_request_error',
    code: 'invalid_api_key',
  },
  403: {
    message: 'You are not allowed to sample from this model',
    type: 'invalid_request_error',
    code: null,
  },
  404: {
    message: 'The model does not exist or you do not have access to it.',
    type: 'invalid_request_error',
    code: 'model_not_found',
  },
  422: { message: 'Unprocessable request.', type: 'invalid_request_error', code: null },
  429: {
    message:
      'Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.',
    type: 'requests',
    code: 'rate_limit_exceeded',
  },
  500: {
    message: 'The server had an error while processing your request. Sorry about that!',
    type: 'server_error',
    code: null,
  },
  503: {
    message: 'The engine is currently overloaded, please try again later.',
    type: 'server_error',
    code: null,
  },
};

function id(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`;
}

function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part) => String(asRecord(part).text ?? '')).join('');
  }
  return '';
}

function decodeRequest(
  endpoint: OpenAIEndpoint,
  path: string,
  headers: IncomingHttpHeaders,
  body: unknown,
): RecordedOpenAIRequest {
  const data = asRecord(body);
  let format: RecordedOpenAIRequest['format'];
  let system = '';
  let user = '';
  let schema: unknown;
  let strict: boolean | undefined;
  if (endpoint === 'responses') {
    const textFormat = asRecord(asRecord(data.text).format);
    format = data.text === undefined ? undefined : (textFormat as RecordedOpenAIRequest['format']);
    schema = textFormat.schema;
    strict = typeof textFormat.strict === 'boolean' ? textFormat.strict : undefined;
    system = typeof data.instructions === 'string' ? data.instructions : '';
    const input = data.input;
    user =
      typeof input === 'string'
        ? input
        : Array.isArray(input)
          ? input.map((item) => contentText(asRecord(item).content)).join('\n')
          : '';
  } else {
    const responseFormat = asRecord(data.response_format);
    format =
      data.response_format === undefined
        ? undefined
        : {
            ...(responseFormat.type === undefined ? {} : { type: responseFormat.type as string }),
            ...asRecord(responseFormat.json_schema),
          };
    const jsonSchema = asRecord(responseFormat.json_schema);
    schema = jsonSchema.schema;
    strict = typeof jsonSchema.strict === 'boolean' ? jsonSchema.strict : undefined;
    const messages = Array.isArray(data.messages) ? data.messages.map(asRecord) : [];
    system = messages
      .filter((message) => message.role === 'system' || message.role === 'developer')
      .map((message) => contentText(message.content))
      .join('\n');
    user = messages
      .filter((message) => message.role !== 'system' && message.role !== 'developer')
      .map((message) => contentText(message.content))
      .join('\n');
  }
  return {
    endpoint,
    path,
    headers,
    body,
    model: typeof data.model === 'string' ? data.model : '',
    schema,
    strict,
    format,
    system,
    user,
    promptText: `${system}\n${user}`,
  };
}

interface Reply {
  status: 'completed' | 'incomplete' | 'failed';
  text: string | null;
  refusal: string | null;
  incompleteReason?: 'max_output_tokens' | 'content_filter';
  error?: { code: string; message: string };
  usage?: ScenarioUsage;
}

function responsesBody(request: RecordedOpenAIRequest, reply: Reply): unknown {
  const data = asRecord(request.body);
  const usage = reply.usage ?? {
    inputTokens: estimateTokens(request.promptText),
    outputTokens: estimateTokens(reply.text ?? reply.refusal ?? ''),
  };
  const content =
    reply.refusal !== null
      ? [{ type: 'refusal', refusal: reply.refusal }]
      : [{ type: 'output_text', text: reply.text ?? '', annotations: [], logprobs: [] }];
  return {
    id: id('resp_'),
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status: reply.status,
    background: false,
    error: reply.error ?? null,
    incomplete_details: reply.incompleteReason ? { reason: reply.incompleteReason } : null,
    instructions: data.instructions ?? null,
    max_output_tokens: data.max_output_tokens ?? null,
    max_tool_calls: null,
    model: request.model,
    output:
      reply.status === 'failed'
        ? []
        : [
            {
              id: id('msg_'),
              type: 'message',
              status: reply.status === 'incomplete' ? 'incomplete' : 'completed',
              role: 'assistant',
              content,
            },
          ],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: data.store ?? true,
    temperature: data.temperature ?? 1,
    text: data.text ?? { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage:
      reply.status === 'failed'
        ? null
        : {
            input_tokens: usage.inputTokens,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: usage.outputTokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: usage.inputTokens + usage.outputTokens,
          },
    user: null,
    metadata: {},
  };
}

function chatBody(request: RecordedOpenAIRequest, reply: Reply): unknown {
  const usage = reply.usage ?? {
    inputTokens: estimateTokens(request.promptText),
    outputTokens: estimateTokens(reply.text ?? reply.refusal ?? ''),
  };
  const finishReason =
    reply.status === 'incomplete'
      ? reply.incompleteReason === 'content_filter'
        ? 'content_filter'
        : 'length'
      : 'stop';
  return {
    id: id('chatcmpl-'),
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: reply.refusal !== null ? null : reply.text,
          refusal: reply.refusal,
          annotations: [],
        },
        logprobs: null,
        finish_reason: finishReason,
      },
    ],
    usage: {
      prompt_tokens: usage.inputTokens,
      completion_tokens: usage.outputTokens,
      total_tokens: usage.inputTokens + usage.outputTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    },
    service_tier: 'default',
    system_fingerprint: 'fp_ctx_test',
  };
}

function toReply(scenario: OpenAIScenario): Reply | undefined {
  switch (scenario.kind) {
    case 'output':
      return {
        status: 'completed',
        text: scenario.text,
        refusal: null,
        ...(scenario.usage === undefined ? {} : { usage: scenario.usage }),
      };
    case 'empty':
      return { status: 'completed', text: '', refusal: null };
    case 'refusal':
      return {
        status: 'completed',
        text: null,
        refusal: scenario.text ?? "I'm sorry, I can't help with that request.",
      };
    case 'truncated':
      return {
        status: 'incomplete',
        text: scenario.text ?? '{"summary": "The user and the assistant discussed',
        refusal: null,
        incompleteReason: scenario.reason ?? 'max_output_tokens',
      };
    case 'failed':
      return {
        status: 'failed',
        text: null,
        refusal: null,
        error: { code: scenario.code, message: scenario.message },
      };
    default:
      return undefined;
  }
}

/** An `odd_usage` scenario's usage under the endpoint's key names, values untouched. */
function wireUsage(endpoint: OpenAIEndpoint, usage: unknown): unknown {
  if (typeof usage !== 'object' || usage === null) return usage;
  const [inputKey, outputKey] =
    endpoint === 'responses'
      ? ['input_tokens', 'output_tokens']
      : ['prompt_tokens', 'completion_tokens'];
  const { inputTokens, outputTokens } = usage as { inputTokens?: unknown; outputTokens?: unknown };
  return {
    ...(inputTokens === undefined ? {} : { [inputKey]: inputTokens }),
    ...(outputTokens === undefined ? {} : { [outputKey]: outputTokens }),
  };
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-request-id': id('req_'),
    ...headers,
  });
  response.end(payload);
}

function sendError(
  response: ServerResponse,
  status: number,
  error: { message: string; type: string; code: string | null; param?: string | null },
  headers: Record<string, string> = {},
): void {
  sendJson(
    response,
    status,
    {
      error: {
        message: error.message,
        type: error.type,
        param: error.param ?? null,
        code: error.code,
      },
    },
    headers,
  );
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts a simulated OpenAI server on 127.0.0.1 at a random port. */
export async function startOpenAITestServer(): Promise<OpenAITestServer> {
  const queue: OpenAIScenario[] = [];
  const recorded: RecordedOpenAIRequest[] = [];
  const hanging = new Set<ServerResponse>();
  const sockets = new Set<Socket>();

  const server = createServer(async (request, response) => {
    const path = (request.url ?? '').split('?')[0] ?? '';
    const raw = await readBody(request);
    const endpoint: OpenAIEndpoint | undefined =
      request.method === 'POST' && path === '/v1/responses'
        ? 'responses'
        : request.method === 'POST' && path === '/v1/chat/completions'
          ? 'chat'
          : undefined;
    if (!endpoint) {
      sendError(response, 404, {
        message: `Invalid URL (${request.method} ${path})`,
        type: 'invalid_request_error',
        code: null,
      });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      sendError(response, 400, {
        message: 'We could not parse the JSON body of your request.',
        type: 'invalid_request_error',
        code: null,
      });
      return;
    }
    const decoded = decodeRequest(endpoint, path, request.headers, body);
    recorded.push(decoded);
    const scenario = queue.shift();
    if (!scenario) {
      sendError(response, 500, {
        message: 'openai-test-server: no scenario queued for this request',
        type: 'server_error',
        code: 'test_no_scenario',
      });
      return;
    }
    switch (scenario.kind) {
      case 'http_error': {
        const defaults = ERROR_BODIES[scenario.status] ?? {
          message: `HTTP ${scenario.status}`,
          type: 'api_error',
          code: null,
        };
        const headers: Record<string, string> = { ...scenario.headers };
        if (scenario.retryAfterSeconds !== undefined) {
          headers['retry-after'] = String(scenario.retryAfterSeconds);
        }
        sendError(
          response,
          scenario.status,
          {
            message: scenario.message ?? defaults.message,
            type: scenario.type ?? defaults.type,
            code: scenario.code === undefined ? defaults.code : scenario.code,
            param: scenario.param ?? null,
          },
          headers,
        );
        return;
      }
      case 'raw_json':
        sendJson(response, scenario.status ?? 200, scenario.body, scenario.headers);
        return;
      case 'raw':
        response.writeHead(scenario.status ?? 200, {
          ...scenario.headers,
          'content-type': scenario.contentType ?? 'application/json',
          'content-length': Buffer.byteLength(scenario.body),
        });
        response.end(scenario.body);
        return;
      case 'odd_usage': {
        const reply: Reply = { status: 'completed', text: scenario.text, refusal: null };
        const body = asRecord(
          endpoint === 'responses' ? responsesBody(decoded, reply) : chatBody(decoded, reply),
        );
        sendJson(response, 200, { ...body, usage: wireUsage(endpoint, scenario.usage) });
        return;
      }
      case 'hang':
        hanging.add(response);
        return;
      case 'hang_after_headers':
        hanging.add(response);
        response.writeHead(200, { 'content-type': 'application/json' });
        response.write('{"id": "resp_');
        return;
      case 'drop_connection':
        request.socket.destroy();
        return;
      default: {
        const reply = toReply(scenario);
        if (!reply) throw new Error(`unhandled scenario ${JSON.stringify(scenario)}`);
        if (endpoint === 'chat' && reply.status === 'failed') {
          throw new Error('the "failed" scenario exists only on the Responses API');
        }
        sendJson(
          response,
          200,
          endpoint === 'responses' ? responsesBody(decoded, reply) : chatBody(decoded, reply),
        );
      }
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  function dropHanging(): void {
    for (const response of hanging) response.socket?.destroy();
    hanging.clear();
  }

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    enqueue(...scenarios) {
      queue.push(...scenarios);
    },
    requests() {
      return [...recorded];
    },
    pending() {
      return queue.length;
    },
    reset() {
      queue.length = 0;
      recorded.length = 0;
      dropHanging();
    },
    async close() {
      dropHanging();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}
