/**
 * A local HTTP server that speaks the part of OpenAI's Responses API an agent uses:
 * `POST /v1/responses`, answered with a response object (or, with `stream: true`, the documented
 * server-sent events ending in `response.completed`). Written from the API reference: output items
 * are `message` items with `output_text` content, or `function_call` items with a `call_id`,
 * a name and JSON `arguments`.
 *
 * Tests script one reply per request and read back what each request carried (`instructions`,
 * `input`), so they can assert on what the model was given.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the model answers to one request. */
export type ScriptedResponse =
  /** A final assistant message. */
  | { text: string }
  /** One or more function calls (the agent runs the tools and calls the model again). */
  | { toolCalls: { name: string; arguments: Record<string, unknown> }[] }
  /** An HTTP error with OpenAI's error body. */
  | { status: number; message: string };

/** One request the server received. */
export interface RecordedResponsesRequest {
  /** The request body as sent. */
  body: Record<string, unknown>;
  /** `instructions` (the agent's system prompt), or '' when absent. */
  instructions: string;
  /** `input` as a list of items (a string input becomes one user message). */
  input: Record<string, unknown>[];
  stream: boolean;
}

export interface ResponsesServer {
  /** `http://127.0.0.1:<port>/v1`, for the `openai` client's `baseURL`. */
  readonly baseURL: string;
  /** Queues replies, one per request, in order. */
  enqueue(...responses: ScriptedResponse[]): void;
  /** Requests received so far, oldest first. */
  readonly requests: RecordedResponsesRequest[];
  /** Replies not used yet. */
  pending(): number;
  close(): Promise<void>;
}

const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

function asItems(input: unknown): Record<string, unknown>[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  return Array.isArray(input) ? (input as Record<string, unknown>[]) : [];
}

function outputItems(reply: ScriptedResponse): Record<string, unknown>[] {
  if ('text' in reply) {
    return [
      {
        type: 'message',
        id: id('msg'),
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: reply.text, annotations: [] }],
      },
    ];
  }
  if ('toolCalls' in reply) {
    return reply.toolCalls.map((call) => ({
      type: 'function_call',
      id: id('fc'),
      call_id: id('call'),
      name: call.name,
      arguments: JSON.stringify(call.arguments),
      status: 'completed',
    }));
  }
  return [];
}

function responseObject(
  body: Record<string, unknown>,
  output: Record<string, unknown>[],
  status: 'in_progress' | 'completed',
) {
  const outputTokens = JSON.stringify(output).length;
  return {
    id: id('resp'),
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: null,
    model: body.model ?? 'gpt-test',
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: body.tools ?? [],
    top_p: 1,
    truncation: 'disabled',
    usage:
      status === 'completed'
        ? {
            input_tokens: 10,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: outputTokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: 10 + outputTokens,
          }
        : null,
    metadata: {},
  };
}

/** The documented event sequence of a streamed response, ending in `response.completed`. */
function streamEvents(
  body: Record<string, unknown>,
  output: Record<string, unknown>[],
): { type: string; [field: string]: unknown }[] {
  const events: { type: string; [field: string]: unknown }[] = [];
  const started = responseObject(body, [], 'in_progress');
  events.push({ type: 'response.created', response: started });
  events.push({ type: 'response.in_progress', response: started });
  output.forEach((item, outputIndex) => {
    const itemId = item.id as string;
    if (item.type === 'message') {
      const text = (item.content as { text: string }[])[0]?.text ?? '';
      events.push({
        type: 'response.output_item.added',
        output_index: outputIndex,
        item: { ...item, status: 'in_progress', content: [] },
      });
      const part = { type: 'output_text', text: '', annotations: [] };
      events.push({
        type: 'response.content_part.added',
        item_id: itemId,
        output_index: outputIndex,
        content_index: 0,
        part,
      });
      // Two deltas, so a client that joins them (and not only reads the final event) is tested.
      const middle = Math.ceil(text.length / 2);
      for (const delta of [text.slice(0, middle), text.slice(middle)]) {
        events.push({
          type: 'response.output_text.delta',
          item_id: itemId,
          output_index: outputIndex,
          content_index: 0,
          delta,
          logprobs: [],
        });
      }
      events.push({
        type: 'response.output_text.done',
        item_id: itemId,
        output_index: outputIndex,
        content_index: 0,
        text,
        logprobs: [],
      });
      events.push({
        type: 'response.content_part.done',
        item_id: itemId,
        output_index: outputIndex,
        content_index: 0,
        part: { ...part, text },
      });
    } else {
      events.push({
        type: 'response.output_item.added',
        output_index: outputIndex,
        item: { ...item, status: 'in_progress', arguments: '' },
      });
      events.push({
        type: 'response.function_call_arguments.delta',
        item_id: itemId,
        output_index: outputIndex,
        delta: item.arguments,
      });
      events.push({
        type: 'response.function_call_arguments.done',
        item_id: itemId,
        output_index: outputIndex,
        arguments: item.arguments,
      });
    }
    events.push({ type: 'response.output_item.done', output_index: outputIndex, item });
  });
  events.push({
    type: 'response.completed',
    response: { ...responseObject(body, output, 'completed'), id: started.id },
  });
  return events.map((event, sequence) => ({ ...event, sequence_number: sequence }));
}

async function readBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

function sendJson(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json', 'x-request-id': id('req') });
  response.end(JSON.stringify(body));
}

/** Starts the server on a free port of 127.0.0.1. */
export async function startResponsesServer(): Promise<ResponsesServer> {
  const queue: ScriptedResponse[] = [];
  const requests: RecordedResponsesRequest[] = [];
  const sockets = new Set<Socket>();

  const server = createServer(async (request, response) => {
    if (request.method !== 'POST' || request.url !== '/v1/responses') {
      sendJson(response, 404, {
        error: { message: `Unknown route ${request.url}`, type: 'invalid_request_error' },
      });
      return;
    }
    const body = await readBody(request);
    const stream = body.stream === true;
    requests.push({
      body,
      instructions: typeof body.instructions === 'string' ? body.instructions : '',
      input: asItems(body.input),
      stream,
    });
    const reply = queue.shift();
    if (!reply) {
      sendJson(response, 500, {
        error: { message: 'The test server has no scripted reply left', type: 'server_error' },
      });
      return;
    }
    if ('status' in reply) {
      sendJson(response, reply.status, {
        error: { message: reply.message, type: 'server_error', param: null, code: null },
      });
      return;
    }
    const output = outputItems(reply);
    if (!stream) {
      sendJson(response, 200, responseObject(body, output, 'completed'));
      return;
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-request-id': id('req'),
    });
    for (const event of streamEvents(body, output)) {
      response.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    }
    response.end();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    enqueue: (...responses) => queue.push(...responses),
    pending: () => queue.length,
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const socket of sockets) socket.destroy();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
