// A local stand-in for the OpenAI API, enough for the README example: `POST /v1/responses` and
// `POST /v1/chat/completions` answer with a valid extraction (the response objects follow the
// OpenAI API reference), and every request is kept for assertions.
import { createServer } from 'node:http';

/** What the model "extracts": planning fields only when the request's schema asks for them. */
export const EXTRACTION = {
  summary: 'The user asked for help deploying a Python app; the assistant proposed three steps.',
  goal: 'Deploy a Python app to production',
  plan: [
    'Containerize the app with Docker',
    'Set up a managed PostgreSQL database',
    'Configure environment variables and secrets',
  ],
  completed_steps: [1],
};

function extractionFor(body) {
  const planning = JSON.stringify(body).includes('completed_steps');
  return JSON.stringify(planning ? EXTRACTION : { summary: EXTRACTION.summary });
}

function responsesReply(body, text) {
  const now = Math.floor(Date.now() / 1000);
  return {
    id: `resp_consumer${now}`,
    object: 'response',
    created_at: now,
    status: 'completed',
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    model: body.model,
    output: [
      {
        id: `msg_consumer${now}`,
        type: 'message',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text, annotations: [] }],
      },
    ],
    parallel_tool_calls: true,
    tools: [],
    tool_choice: 'auto',
    text: body.text ?? { format: { type: 'text' } },
    usage: {
      input_tokens: 100,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 40,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 140,
    },
  };
}

function chatReply(body, text) {
  const now = Math.floor(Date.now() / 1000);
  return {
    id: `chatcmpl-consumer${now}`,
    object: 'chat.completion',
    created: now,
    model: body.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text, refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 100, completion_tokens: 40, total_tokens: 140 },
  };
}

/**
 * Starts the server on a free port of 127.0.0.1.
 * @returns {Promise<{ baseURL: string, requests: { path: string, body: any }[], close(): Promise<void> }>}
 */
export async function startFakeOpenAI() {
  const requests = [];
  const server = createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk) => {
      raw += chunk;
    });
    request.on('end', () => {
      const send = (status, payload) => {
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(payload));
      };
      let body;
      try {
        body = JSON.parse(raw || '{}');
      } catch {
        send(400, {
          error: {
            message: 'invalid JSON',
            type: 'invalid_request_error',
            param: null,
            code: null,
          },
        });
        return;
      }
      const path = (request.url ?? '').split('?')[0];
      requests.push({ path, body });
      if (request.method === 'POST' && path === '/v1/responses') {
        send(200, responsesReply(body, extractionFor(body)));
      } else if (request.method === 'POST' && path === '/v1/chat/completions') {
        send(200, chatReply(body, extractionFor(body)));
      } else {
        send(404, {
          error: {
            message: `no route ${request.method} ${path}`,
            type: 'invalid_request_error',
            param: null,
            code: null,
          },
        });
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    baseURL: `http://127.0.0.1:${address.port}/v1`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
