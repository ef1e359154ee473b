import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  type OpenAITestServer,
  type RecordedOpenAIRequest,
  startOpenAITestServer,
} from '../../../../packages/model-openai/test/openai-test-server.js';

/**
 * Two simulated OpenAI servers behind one base URL. The chat sends its replies and its context
 * extractions to the same `OPENAI_BASE_URL`, and the reply of turn N+1 may race the extraction of
 * turn N; one FIFO of scenarios cannot tell them apart. The router sends a request with a
 * `response_format` (the extractor asks for JSON) to `extractions` and everything else to
 * `replies`, each with its own scripted queue.
 */
export interface ModelServers {
  /** `http://127.0.0.1:<port>/v1`, for `OPENAI_BASE_URL`. */
  readonly baseURL: string;
  /** Answers the chat's reply requests (plain Chat Completions). */
  readonly replies: OpenAITestServer;
  /** Answers the extractor's requests (Chat Completions with `response_format`). */
  readonly extractions: OpenAITestServer;
  /** Keeps extraction requests waiting until the returned function is called. */
  holdExtractions(): () => void;
  /** Extraction requests currently held. */
  heldExtractions(): number;
  reset(): void;
  close(): Promise<void>;
}

function isExtraction(body: string): boolean {
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    return parsed.response_format !== undefined || parsed.text !== undefined;
  } catch {
    return false;
  }
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function forward(
  target: OpenAITestServer,
  request: IncomingMessage,
  body: Buffer,
  response: ServerResponse,
): void {
  const url = new URL(target.baseURL);
  const upstream = httpRequest(
    {
      host: url.hostname,
      port: url.port,
      method: request.method,
      path: request.url,
      headers: { ...request.headers, host: url.host },
    },
    (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    },
  );
  upstream.on('error', () => response.destroy());
  upstream.end(body);
}

/** Starts both simulated servers and the router in front of them. */
export async function startModelServers(): Promise<ModelServers> {
  const replies = await startOpenAITestServer();
  const extractions = await startOpenAITestServer();
  let gate: Promise<void> | undefined;
  let held = 0;
  const sockets = new Set<Socket>();

  const router = createServer(async (request, response) => {
    const body = await readBody(request);
    if (!isExtraction(body.toString('utf8'))) {
      forward(replies, request, body, response);
      return;
    }
    if (gate) {
      held += 1;
      await gate;
      held -= 1;
    }
    forward(extractions, request, body, response);
  });
  router.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => router.listen(0, '127.0.0.1', resolve));
  const { port } = router.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    replies,
    extractions,
    holdExtractions() {
      let release = () => {};
      gate = new Promise<void>((resolve) => {
        release = () => {
          gate = undefined;
          resolve();
        };
      });
      return release;
    },
    heldExtractions: () => held,
    reset() {
      replies.reset();
      extractions.reset();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => router.close(() => resolve()));
      await Promise.all([replies.close(), extractions.close()]);
    },
  };
}

/** The Chat Completions messages of a recorded request. */
export function messagesOf(request: RecordedOpenAIRequest): { role: string; content: string }[] {
  const body = request.body as { messages?: { role: string; content: unknown }[] };
  return (body.messages ?? []).map((message) => ({
    role: message.role,
    content:
      typeof message.content === 'string' ? message.content : JSON.stringify(message.content),
  }));
}

/** The `<message>` elements of an extraction request's transcript, in order. */
export function transcriptOf(request: RecordedOpenAIRequest): { role: string; content: string }[] {
  const pattern = /<message index="\d+" role="(\w+)">\n([\s\S]*?)\n<\/message>/g;
  return [...request.user.matchAll(pattern)].map((match) => ({
    role: match[1] ?? '',
    content: match[2] ?? '',
  }));
}

/** An extraction answer in summary mode. */
export function summaryOutput(summary: string) {
  return { kind: 'output' as const, text: JSON.stringify({ summary }) };
}
