import { ExtractionError, type ExtractionRequest } from '@ctx/core';
import {
  EXTRACTION_SCHEMA_NAME,
  type ExtractionFields,
  getExtractionJsonSchema,
} from '@ctx/core/adapter';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createOpenAIExtractor } from '../src/index.js';
import { startOpenAITestServer } from './openai-test-server.js';

// Custom fields through the real SDK: the strict schema carries them, the reply's fields become
// the draft's, and a value of the wrong type is a typed extraction error.

const server = await startOpenAITestServer();
afterAll(() => server.close());
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
  planning: false,
  fields,
};

describe.each(['responses', 'chat'] as const)('custom fields (%s API)', (api) => {
  const extractor = createOpenAIExtractor({
    apiKey: 'sk-test-key',
    baseURL: server.baseURL,
    model: 'gpt-4.1-mini',
    api,
  });

  it('sends the fields in the strict schema and returns them in the draft', async () => {
    server.enqueue({
      kind: 'output',
      text: JSON.stringify({
        summary: 'Deploying to Fly.',
        fields: { platform: 'fly', replicas: 2 },
      }),
    });
    const result = await extractor.extract(request);
    expect(result.draft).toEqual({
      summary: 'Deploying to Fly.',
      fields: { platform: 'fly', replicas: 2 },
    });
    const sent = server.requests().at(-1);
    expect(sent?.format).toEqual({
      type: 'json_schema',
      name: EXTRACTION_SCHEMA_NAME,
      schema: getExtractionJsonSchema(false, fields),
      strict: true,
    });
    expect(JSON.stringify(sent?.format?.schema)).toContain('"replicas"');
    expect(sent?.system).toContain('custom fields');
  });

  it('a reply with an invalid field value is a typed schema_mismatch', async () => {
    server.enqueue({
      kind: 'output',
      text: JSON.stringify({ summary: 'S', fields: { platform: 'heroku', replicas: 2.5 } }),
    });
    const error = await extractor.extract(request).catch((caught: unknown) => caught);
    expect(ExtractionError.isInstance(error)).toBe(true);
    expect((error as ExtractionError).code).toBe('EXTRACTION_FAILED');
    expect((error as ExtractionError).reason).toBe('schema_mismatch');
  });
});
