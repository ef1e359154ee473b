import type { ExtractionRequest } from '@ctx/core';
import { type ExtractionFields, getExtractionJsonSchema } from '@ctx/core/adapter';
import { describe, expect } from 'vitest';
import { type ExtractorTools, summaryRequest } from './extractor-tools.js';

// Shaped like what core compiles from
// z.object({ platform: z.enum(['fly', 'render']).describe(...), replicas: z.number().int().describe(...) }).
const FIELDS: ExtractionFields = {
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

function fieldsRequest(planning: boolean): ExtractionRequest {
  return {
    ...summaryRequest(),
    messages: [{ role: 'user', content: 'Deploy it to Fly with 2 replicas.' }],
    planning,
    fields: FIELDS,
  };
}

/** Planning-mode output keys, all null, for outputs that only care about `fields`. */
const NO_PLAN = { goal: null, plan: null, completed_steps: null };

/**
 * The custom-fields group of the extractor suite, registered inside its top-level `describe`: the
 * request's fields schema is sent, the reply's fields become the draft's, and a field value of the
 * wrong type is a typed error.
 */
export function describeExtractorFields(tools: ExtractorTools): void {
  const { test, run, lastRequest, expectExtractionError } = tools;

  describe('custom fields', () => {
    test('summary mode: the fields are in the sent schema and come back in the draft', async () => {
      const result = await run(
        {
          kind: 'output',
          text: JSON.stringify({
            summary: 'Deploying to Fly.',
            fields: { platform: 'fly', replicas: 2 },
          }),
        },
        fieldsRequest(false),
      );
      expect(result.draft).toEqual({
        summary: 'Deploying to Fly.',
        fields: { platform: 'fly', replicas: 2 },
      });
      const sent = lastRequest();
      expect(sent.schema, 'summary-mode schema with fields').toEqual(
        getExtractionJsonSchema(false, FIELDS),
      );
      expect(sent.strict, 'strict structured output').not.toBe(false);
      expect(sent.promptText, 'the prompt explains the fields').toContain('custom fields');
    });

    test('planning mode: the fields are in the sent schema and come back in the draft', async () => {
      const result = await run(
        {
          kind: 'output',
          text: JSON.stringify({
            summary: 'Deploying to Fly.',
            ...NO_PLAN,
            fields: { platform: 'fly', replicas: 2 },
          }),
        },
        fieldsRequest(true),
      );
      expect(result.draft.fields).toEqual({ platform: 'fly', replicas: 2 });
      expect(lastRequest().schema, 'planning-mode schema with fields').toEqual(
        getExtractionJsonSchema(true, FIELDS),
      );
    });

    test('a field value of the wrong type fails with schema_mismatch', async () => {
      const cases: Array<[string, boolean, Record<string, unknown>]> = [
        ['a value outside the enum and a fraction', false, { platform: 'heroku', replicas: 2.5 }],
        ['a string for an integer', true, { platform: 'fly', replicas: 'two' }],
      ];
      for (const [label, planning, fields] of cases) {
        const output = planning ? { summary: 'S', ...NO_PLAN, fields } : { summary: 'S', fields };
        await expectExtractionError(
          () => run({ kind: 'output', text: JSON.stringify(output) }, fieldsRequest(planning)),
          'schema_mismatch',
          `fields with ${label}`,
        );
      }
    });
  });
}
