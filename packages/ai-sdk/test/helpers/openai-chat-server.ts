/**
 * A local HTTP server that speaks OpenAI's Chat Completions wire protocol (`POST
 * /v1/chat/completions`), written from OpenAI's API reference: a `chat.completion` object, or with
 * `stream: true` server-sent events of `chat.completion.chunk` objects ending in `data: [DONE]`
 * (with a usage chunk when `stream_options.include_usage` is set). Tests script the replies and
 * read back the requests the real `@ai-sdk/openai` provider sent.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One scripted reply: its text, sent in these pieces when streaming. */
export interface ChatReply {
  deltas: string[];
  /** Streaming only: send this many pieces, then keep the response open until the client leaves. */
  stallAfter?: number;
}

/** A request the server received: the parsed JSON body. */
export interface ChatRequest {
  model: string;
  messages: { role: string; content: unknown }[];
  stream?: boolean;
  [key: string]: unknown;
}

export interface OpenAIChatServer {
  /** `http://127.0.0.1:<port>/v1`. */
  readonly baseURL: string;
  readonly requests: ChatRequest[];
  /** Queues replies, answered in order. */
  reply(...replies: ChatReply[]): void;
  /** Resolves when a stalled response's client has gone away. */
  clientGone(): Promise<void>;
  close(): Promise<void>;
}

const usage = { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 };

function sendJson(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

export async function startOpenAIChatServer(): Promise<OpenAIChatServer> {
  const requests: ChatRequest[] = [];
  const queue: ChatReply[] = [];
  const sockets = new Set<Socket>();
  let gone: (() => void) | undefined;
  let gonePromise = new Promise<void>((resolve) => {
    gone = resolve;
  });
  let counter = 0;

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    if (request.method !== 'POST' || request.url !== '/v1/chat/completions') {
      sendJson(response, 404, {
        error: {
          message: `Unknown route ${request.method} ${request.url}`,
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      });
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequest;
    requests.push(body);
    const reply = queue.shift();
    if (!reply) {
      sendJson(response, 500, {
        error: { message: 'No scripted reply left', type: 'server_error', param: null, code: null },
      });
      return;
    }
    counter += 1;
    const id = `chatcmpl-${counter}`;
    const created = Math.floor(Date.now() / 1000);
    if (!body.stream) {
      sendJson(response, 200, {
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: reply.deltas.join(''), refusal: null },
            logprobs: null,
            finish_reason: 'stop',
          },
        ],
        usage,
      });
      return;
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const send = (data: unknown) => response.write(`data: ${JSON.stringify(data)}\n\n`);
    const chunk = (delta: Record<string, unknown>, finishReason: string | null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: body.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    });
    send(chunk({ role: 'assistant', content: '', refusal: null }, null));
    const pieces =
      reply.stallAfter === undefined ? reply.deltas : reply.deltas.slice(0, reply.stallAfter);
    for (const piece of pieces) send(chunk({ content: piece }, null));
    if (reply.stallAfter !== undefined) {
      response.on('close', () => {
        gone?.();
        gonePromise = new Promise<void>((resolve) => {
          gone = resolve;
        });
      });
      return;
    }
    send(chunk({}, 'stop'));
    const streamOptions = body.stream_options as { include_usage?: boolean } | undefined;
    if (streamOptions?.include_usage) {
      send({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [], usage });
    }
    response.end('data: [DONE]\n\n');
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      sendJson(response, 500, {
        error: { message: String(error), type: 'server_error', param: null, code: null },
      });
    });
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
    reply: (...replies) => queue.push(...replies),
    clientGone: () => gonePromise,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
