import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Message } from '@ctx/core';

/** The apps/server folder. */
export const SERVER_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A random id with a readable prefix, so suites can share one database server. */
export function randomId(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A planning conversation the extractive extractor turns into a goal and a four-step plan. */
export const PLAN_TURN: Message[] = [
  { role: 'user', content: 'I want to deploy my Python web app to production.' },
  {
    role: 'assistant',
    content: [
      'Here is a plan:',
      '1. Containerize the app with Docker',
      '2. Set up a managed PostgreSQL database',
      '3. Configure environment variables and secrets',
      '4. Deploy behind a reverse proxy with HTTPS',
    ].join('\n'),
  },
];

/** The plan {@link PLAN_TURN} produces. */
export const PLAN_STEPS: [string, string, string, string] = [
  'Containerize the app with Docker',
  'Set up a managed PostgreSQL database',
  'Configure environment variables and secrets',
  'Deploy behind a reverse proxy with HTTPS',
];

/** A turn that completes step `number` of the plan. */
export function completeStepTurn(number: number): Message[] {
  return [
    { role: 'user', content: `Done with step ${number}. What comes next?` },
    { role: 'assistant', content: 'Good progress. Let us move on to the following step.' },
  ];
}

/** Sends one turn; returns the response. */
export function postTurn(
  baseUrl: string,
  sessionId: string,
  userId: string,
  messages: Message[],
  options: { wait?: boolean } = {},
): Promise<Response> {
  const query = options.wait === false ? '?wait=false' : '';
  return fetch(`${baseUrl}/v1/sessions/${encodeURIComponent(sessionId)}/turns${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-ctx-user': userId },
    body: JSON.stringify({ messages }),
  });
}

/** A `node dist/main.js` child process. */
export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns the built service with `env` (plus PORT=0) and waits until it listens. */
export async function spawnServer(env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, [join(SERVER_ROOT, 'dist/main.js')], {
    cwd: SERVER_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not start within 20 s; output:\n${output}`));
    }, 20_000);
    const check = () => {
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', check);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with code ${code} before listening; output:\n${output}`));
    });
  });
  return {
    url,
    child,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A local server speaking OpenAI's Chat Completions wire protocol. */
export interface FakeOpenAI {
  /** The base URL to give the SDK (`…/v1`). */
  baseURL: string;
  /** Bodies of the requests received, in order. */
  requests: unknown[];
  close(): Promise<void>;
}

/** What a test's handler answers: a status, a JSON body, headers, and an optional delay. */
export interface FakeReply {
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
}

/** A Chat Completions response whose message content is `content` serialized as JSON. */
export function chatCompletion(content: unknown, model = 'test-model'): unknown {
  return {
    id: `chatcmpl-${randomUUID()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: JSON.stringify(content), refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 },
  };
}

/** Starts a local OpenAI-compatible server answering `POST /v1/chat/completions` with `reply`. */
export async function startFakeOpenAI(
  reply: (body: unknown, index: number) => FakeReply,
): Promise<FakeOpenAI> {
  const requests: unknown[] = [];
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let text = '';
    request.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    request.on('end', () => {
      if (request.method !== 'POST' || request.url !== '/v1/chat/completions') {
        response.writeHead(404, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }),
        );
        return;
      }
      const body: unknown = JSON.parse(text);
      requests.push(body);
      const answer = reply(body, requests.length - 1);
      setTimeout(() => {
        if (response.destroyed) return;
        response.writeHead(answer.status ?? 200, {
          'content-type': 'application/json',
          ...answer.headers,
        });
        response.end(JSON.stringify(answer.body));
      }, answer.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
