import { describe, expect, it } from 'vitest';
import { parseExtractionOutput, type ToleratedOutput } from '../src/adapter/index.js';
import {
  createMemoryRepository,
  ExtractionError,
  type SessionContextEvent,
  SessionContextStore,
} from '../src/index.js';
import { createScriptedExtractor } from '../src/testing/index.js';

// Loose local models in plain JSON mode add keys the schema does not have. Keys whose value says
// nothing (null, "", [], {}) are dropped and reported; anything that could carry meaning is refused.

function parse(output: unknown, planning: boolean) {
  const reports: ToleratedOutput[] = [];
  const draft = parseExtractionOutput(output, {
    planning,
    onTolerated: (tolerated) => reports.push(tolerated),
  });
  return { draft, reports };
}

function refusal(output: unknown, planning: boolean): ExtractionError {
  try {
    parseExtractionOutput(output, { planning });
  } catch (error) {
    expect(ExtractionError.isInstance(error)).toBe(true);
    return error as ExtractionError;
  }
  throw new Error('expected the output to be refused');
}

describe('tolerated extras in the model output', () => {
  it('accepts a summary-mode answer with "goal": null, "plan": null and reports the dropped keys', () => {
    const { draft, reports } = parse(
      '{"summary":"The user plans a trip to Lisbon.","goal":null,"plan":null}',
      false,
    );
    expect(draft).toEqual({ summary: 'The user plans a trip to Lisbon.' });
    expect(reports).toEqual([{ droppedKeys: ['goal', 'plan'] }]);
  });

  it('drops empty planning keys in summary mode: null, "", whitespace, [] and {}', () => {
    const { draft, reports } = parse(
      {
        summary: 'S',
        goal: '  ',
        plan: [],
        completed_steps: null,
        progress: [],
        notes: {},
      },
      false,
    );
    expect(draft).toEqual({ summary: 'S' });
    expect(reports).toEqual([
      { droppedKeys: ['goal', 'plan', 'completed_steps', 'progress', 'notes'] },
    ]);
  });

  it('drops empty extras in planning mode and keeps the schema keys as they are', () => {
    const { draft, reports } = parse(
      {
        summary: 'S',
        goal: 'G',
        plan: ['a', 'b'],
        completed_steps: [1],
        progress: [],
        open_questions: null,
      },
      true,
    );
    expect(draft).toEqual({ summary: 'S', goal: 'G', plan: ['a', 'b'], progress: ['a'] });
    expect(reports).toEqual([{ droppedKeys: ['progress', 'open_questions'] }]);
  });

  it('reports nothing when the output has no extras', () => {
    expect(parse('{"summary":"S"}', false).reports).toEqual([]);
    expect(parse('{"summary":"S","goal":null,"plan":null,"completed_steps":null}', true)).toEqual({
      draft: { summary: 'S', goal: null, plan: null, progress: null },
      reports: [],
    });
  });

  it('refuses a non-empty plan or goal in summary mode as schema_mismatch, naming the key', () => {
    const plan = refusal({ summary: 'S', goal: null, plan: ['Book flights'] }, false);
    expect(plan.reason).toBe('schema_mismatch');
    expect(plan.message).toContain('"plan"');
    expect(plan.message).not.toContain('"goal"');
    const goal = refusal({ summary: 'S', goal: 'Visit Lisbon' }, false);
    expect(goal.reason).toBe('schema_mismatch');
    expect(goal.message).toContain('"goal"');
  });

  it('refuses unknown keys with content, and non-empty progress in planning mode', () => {
    expect(refusal({ summary: 'S', decisions: ['Use PATCH'] }, false).reason).toBe(
      'schema_mismatch',
    );
    expect(refusal({ summary: 'S', extra: 0 }, false).reason).toBe('schema_mismatch');
    expect(refusal({ summary: 'S', extra: false }, false).reason).toBe('schema_mismatch');
    expect(refusal({ summary: 'S', extra: { note: null } }, false).reason).toBe('schema_mismatch');
    expect(
      refusal(
        { summary: 'S', goal: null, plan: ['a'], completed_steps: null, progress: ['a'] },
        true,
      ).reason,
    ).toBe('schema_mismatch');
  });

  it('still refuses wrong types and missing keys of the schema itself', () => {
    expect(refusal({ summary: 42, goal: null }, false).reason).toBe('schema_mismatch');
    expect(refusal({ goal: null, plan: null }, false).reason).toBe('schema_mismatch');
    expect(refusal({ summary: 'S', goal: null, plan: null }, true).reason).toBe('schema_mismatch');
    expect(
      refusal({ summary: 'S', goal: null, plan: '', completed_steps: null }, true).reason,
    ).toBe('schema_mismatch');
  });

  it('reports nothing when a tolerated output is refused for another reason', () => {
    const reports: ToleratedOutput[] = [];
    expect(() =>
      parseExtractionOutput(
        { summary: 7, goal: null },
        { planning: false, onTolerated: (tolerated) => reports.push(tolerated) },
      ),
    ).toThrow();
    expect(reports).toEqual([]);
  });
});

describe('the store reports tolerated extras', () => {
  it('emits extraction-tolerated with the dropped keys and still updates the snapshot', async () => {
    const events: SessionContextEvent[] = [];
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({
        replies: [{ draft: { summary: 'Trip to Lisbon.' }, tolerated: { droppedKeys: ['goal'] } }],
      }),
      config: { onEvent: (event) => events.push(event) },
    });
    const result = await store.update({
      sessionId: 'tolerated-1',
      messages: [{ role: 'user', content: 'I want to go to Lisbon.' }],
    });
    expect(result.context?.summary).toBe('Trip to Lisbon.');
    expect(events.filter((event) => event.type === 'extraction-tolerated')).toEqual([
      {
        type: 'extraction-tolerated',
        sessionId: 'tolerated-1',
        droppedKeys: ['goal'],
        background: false,
      },
    ]);
  });
});
