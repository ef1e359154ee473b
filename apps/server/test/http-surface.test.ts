import { request as httpRequest } from 'node:http';
import { createExtractorFromEnv } from '@ctx/config';
import {
  type ContextExtractor,
  createMemoryRepository,
  type Message,
  SessionContextSchema,
  SessionContextStore,
} from '@ctx/core';
import { createExtractiveExtractor } from '@ctx/model-extractive';
import { afterEach, describe, expect, it } from 'vitest';
import { createServerApp, type SessionContextJson } from '../src/app.js';
import type { ErrorBody } from '../src/http-errors.js';
import { startServer } from '../src/server.js';
import { startFakeOpenAI } from './helpers.js';

// What a hostile or careless client tries against a server without authentication (loopback).
// Each case here failed on the server before requests were validated from the core's schemas.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const hello: Message[] = [
  { role: 'user', content: 'How should I name the REST endpoints of my todo API?' },
  { role: 'assistant', content: 'Use plural nouns such as /todos and /todos/{id}.' },
];

function setup(extractor: ContextExtractor = createExtractiveExtractor()) {
  const repository = createMemoryRepository();
  const store = new SessionContextStore({ repository, extractor });
  const app = createServerApp({ store, onError: () => undefined });
  cleanups.push(async () => {
    await store.flush();
    await repository.close();
  });
  return { app, store };
}

function post(app: ReturnType<typeof setup>['app'], path: string, body: unknown, user = 'alice') {
  return app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-ctx-user': user },
    body: JSON.stringify(body),
  });
}

async function errorOf(response: Response): Promise<ErrorBody['error']> {
  return ((await response.json()) as ErrorBody).error;
}

describe('a typo inside a message', () => {
  it('is refused (400 naming body.messages.N.field), not dropped, and nothing is stored', async () => {
    const { app, store } = setup();
    const response = await post(app, '/v1/sessions/typo/turns', {
      messages: [
        { role: 'user', content: 'Deploy on Friday.' },
        { role: 'assistant', contnet: 'Friday it is.', content: 'Noted.' },
      ],
    });
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.issues).toEqual([
      { path: 'body.messages.1.contnet', message: expect.stringContaining('unknown field') },
    ]);
    expect(await store.get('typo')).toBeNull();
  });
});

describe('a malformed percent-escape in the path', () => {
  it.each([
    ['POST', '/v1/sessions/a%ZZ/turns'],
    ['POST', '/v1/sessions/caf%E9/turns'],
    ['GET', '/v1/sessions/a%ZZ/context'],
    ['DELETE', '/v1/sessions/a%ZZ'],
  ])('%s %s answers 400 instead of using the escape literally', async (method, path) => {
    const { app, store } = setup();
    const response = await app.request(path, {
      method,
      headers: { 'content-type': 'application/json', 'x-ctx-user': 'alice' },
      ...(method === 'POST' ? { body: JSON.stringify({ messages: hello }) } : {}),
    });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).issues?.[0]?.path).toBe('path');
    expect((await store.list()).items).toEqual([]);
  });

  it('keeps one URL per session: a%ZZ is refused, a%25ZZ names the session "a%ZZ"', async () => {
    const { app } = setup();
    expect((await post(app, '/v1/sessions/a%25ZZ/turns', { messages: hello })).status).toBe(200);
    const read = await app.request('/v1/sessions/a%25ZZ/context');
    expect(((await read.json()) as { context: SessionContextJson }).context.sessionId).toBe('a%ZZ');
    expect((await app.request('/v1/sessions/a%ZZ/context')).status).toBe(400);
  });
});

describe('a non-ASCII user id in x-ctx-user', () => {
  async function listen() {
    const repository = createMemoryRepository();
    const store = new SessionContextStore({ repository, extractor: createExtractiveExtractor() });
    const running = await startServer({ store, port: 0 });
    cleanups.push(() => running.shutdown());
    return { running, store };
  }

  // Sends the header as raw bytes, as curl does with a UTF-8 terminal (fetch cannot).
  function postRaw(url: string, headerBytes: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      const body = JSON.stringify({ messages: hello });
      const request = httpRequest(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            // Node writes a header string as Latin-1: one byte per character.
            'x-ctx-user': headerBytes.toString('latin1'),
          },
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        },
      );
      request.on('error', reject);
      // A Buffer body: Node writes a string body's encoding (UTF-8) over the header bytes too.
      request.end(Buffer.from(body));
    });
  }

  it('reads raw UTF-8 bytes as UTF-8: José stays José, not JosÃ©', async () => {
    const { running, store } = await listen();
    const status = await postRaw(`${running.url}/v1/sessions/utf8/turns`, Buffer.from('José'));
    expect(status).toBe(200);
    expect((await store.get('utf8'))?.userId).toBe('José');
  });

  it('decodes the percent-encoded form (encodeURIComponent), the documented one', async () => {
    const { running, store } = await listen();
    const response = await fetch(`${running.url}/v1/sessions/encoded/turns`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-ctx-user': encodeURIComponent('José') },
      body: JSON.stringify({ messages: hello }),
    });
    expect(response.status).toBe(200);
    expect((await store.get('encoded'))?.userId).toBe('José');
    // The same user reads it back, whichever form it sends.
    const read = await fetch(`${running.url}/v1/sessions/encoded/context`, {
      headers: { 'x-ctx-user': 'Jos%C3%A9' },
    });
    expect(read.status).toBe(200);
  });

  it('refuses bytes that are not UTF-8 (a Latin-1 é) and malformed escapes with 400', async () => {
    const { running, store } = await listen();
    expect(
      await postRaw(`${running.url}/v1/sessions/latin1/turns`, Buffer.from([0x4a, 0xe9])),
    ).toBe(400);
    expect(await postRaw(`${running.url}/v1/sessions/latin1/turns`, Buffer.from('50%off'))).toBe(
      400,
    );
    expect(await store.get('latin1')).toBeNull();
  });
});

describe('Retry-After from a rate-limited model provider', () => {
  it('is always a sane integer: an upstream 10^23 s is clamped to an hour', async () => {
    const model = await startFakeOpenAI(() => ({
      status: 429,
      headers: { 'retry-after': '100000000000000000000000' },
      body: {
        error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' },
      },
    }));
    cleanups.push(() => model.close());
    const { extractor } = await createExtractorFromEnv({
      CTX_MODEL: 'openai:test-model',
      OPENAI_BASE_URL: model.baseURL,
      OPENAI_API_KEY: 'test-key',
    });
    const { app } = setup(extractor);
    const response = await post(app, '/v1/sessions/limited/turns', { messages: hello });
    expect(response.status).toBe(503);
    const header = response.headers.get('retry-after') ?? '';
    expect(header).toMatch(/^[1-9]\d*$/);
    expect(Number(header)).toBeLessThanOrEqual(3600);
  });
});

describe('GET /openapi.json', () => {
  it('describes every endpoint from the same schemas that validate the requests', async () => {
    const { app } = setup();
    const response = await app.request('/openapi.json');
    expect(response.status).toBe(200);
    const document = (await response.json()) as {
      openapi: string;
      paths: Record<string, Record<string, Record<string, unknown>>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths).sort()).toEqual([
      '/v1/sessions',
      '/v1/sessions/{sessionId}',
      '/v1/sessions/{sessionId}/context',
      '/v1/sessions/{sessionId}/turns',
    ]);
    expect(document.components.securitySchemes.bearer).toMatchObject({ scheme: 'bearer' });
    const turn = document.paths['/v1/sessions/{sessionId}/turns']?.post as {
      requestBody: { content: Record<string, { schema: Record<string, unknown> }> };
      responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
    };
    const body = turn.requestBody.content['application/json']?.schema as {
      additionalProperties: boolean;
      properties: { messages: { items: { additionalProperties: boolean; required: string[] } } };
    };
    expect(body.additionalProperties).toBe(false);
    expect(body.properties.messages.items).toMatchObject({
      additionalProperties: false,
      required: ['role', 'content'],
    });
    // The snapshot in responses has exactly the properties of the core's SessionContextSchema.
    const result = turn.responses['200']?.content?.['application/json']?.schema as {
      properties: { context: { properties?: Record<string, unknown>; anyOf?: unknown[] } };
    };
    const context = result.properties.context;
    const snapshot = (context.anyOf?.[0] ?? context) as { properties: Record<string, unknown> };
    expect(Object.keys(snapshot.properties).sort()).toEqual(
      Object.keys(SessionContextSchema.shape).sort(),
    );
  });
});
