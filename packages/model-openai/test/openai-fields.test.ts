import type { ExtractionRequest } from '@ctx/core';
import {
  EXTRACTION_SCHEMA_NAME,
  type ExtractionFields,
  getExtractionJsonSchema,
} from '@ctx/core/adapter';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createOpenAIExtractor } from '../src/index.js';
import { startOpenAITestServer } from './openai-test-server.js';

// The conformance suite (test/conformance.test.ts) covers custom fields on both APIs: the schema
// with the fields is sent strict, the reply's fields become the draft's, a wrong value is a
// schema_mismatch. Here: the fields travel in OpenAI's named json_schema format.

const server = await startOpenAITestServer();
afterAll(() => server.close());
beforeEach(() => server.reset());

const fields: ExtractionFields = {
  schema: {
    type: 'object',
    properties: { replicas: { type: ['integer', 'null'], description: 'How many replicas run' } },
    required: ['replicas'],
    additionalProperties: false,
  },
};

const request: ExtractionRequest = {
  previous: null,
  messages: [{ role: 'user', content: 'Run it with 2 replicas.' }],
  planning: false,
  fields,
};

describe.each(['responses', 'chat'] as const)('custom fields (%s API)', (api) => {
  it('go in the named, strict json_schema format', async () => {
    server.enqueue({ kind: 'output', text: '{"summary":"S","fields":{"replicas":2}}' });
    await createOpenAIExtractor({
      apiKey: 'sk-test-key',
      baseURL: server.baseURL,
      model: 'gpt-4.1-mini',
      api,
    }).extract(request);
    expect(server.requests().at(-1)?.format).toEqual({
      type: 'json_schema',
      name: EXTRACTION_SCHEMA_NAME,
      schema: getExtractionJsonSchema(false, fields),
      strict: true,
    });
  });
});
