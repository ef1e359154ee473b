import { ExtractionError, type ExtractionRequest } from '@ctx/core';
import { type ExtractionFields, getExtractionJsonSchema } from '@ctx/core/adapter';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGeminiExtractor } from '../src/index.js';
import {
  type GeminiTestServer,
  geminiReplies,
  startGeminiServer,
} from './helpers/gemini-server.js';

// Custom fields through the real SDK: the response schema carries them, the reply's fields become
// the draft's, and a value of the wrong type is a typed extraction error.

let server: GeminiTestServer;
beforeAll(async () => {
  server = await startGeminiServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

// Shaped like what core compiles from z.object({ platform: z.enum([...]).describe(...), replicas: z.number().int().describe(...) }).
const fields: ExtractionFields = {
  schema: {
    type: 'object',
    description: "The application's custom fields.",
    properties: {
      platform: {
        type: ['string', 'null'],
        enum: ['fly', 'render', null],
        description: 'The platform the app is deployed to',
      },
      replicas: { type: ['integer', 'null'], description: 'How many replicas run' },
    },
    required: ['platform', 'replicas'],
    additionalProperties: false,
  },
};

const request: ExtractionRequest = {
  previous: null,
  messages: [{ role: 'user', content: 'Deploy it to Fly with 2 replicas.' }],
  planning: true,
  fields,
};

describe('custom fields (Gemini)', () => {
  const extractor = () =>
    createGeminiExtractor({ apiKey: 'test-key', baseUrl: server.baseUrl, model: 'gemini-test' });

  it('sends the fields in responseJsonSchema and returns them in the draft', async () => {
    server.enqueue(
      geminiReplies.text(
        JSON.stringify({
          summary: 'Deploying to Fly.',
          goal: null,
          plan: null,
          completed_steps: null,
          fields: { platform: 'fly', replicas: 2 },
        }),
      ),
    );
    const result = await extractor().extract(request);
    expect(result.draft.fields).toEqual({ platform: 'fly', replicas: 2 });
    const [sent] = server.requests();
    expect(sent?.body.generationConfig?.responseJsonSchema).toEqual(
      getExtractionJsonSchema(true, fields),
    );
  });

  it('a reply with an invalid field value is a typed schema_mismatch', async () => {
    server.enqueue(
      geminiReplies.text(
        JSON.stringify({
          summary: 'S',
          goal: null,
          plan: null,
          completed_steps: null,
          fields: { platform: 'fly', replicas: 'two' },
        }),
      ),
    );
    const error = await extractor()
      .extract(request)
      .catch((caught: unknown) => caught);
    expect(ExtractionError.isInstance(error)).toBe(true);
    expect((error as ExtractionError).reason).toBe('schema_mismatch');
  });
});
