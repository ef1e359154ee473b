import {
  ContextError,
  type ContextRepository,
  type SessionContext,
  SessionContextStore,
} from '@ctx/core';
import { createScriptedExtractor } from '@ctx/core/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, type Backend, openBackend } from './helpers/backends.js';

// Property-based: whatever id and content a caller hands a repository, `save` + `get` is an exact
// round trip, or the call fails with INVALID_INPUT and nothing was stored. The oracle below is
// written from the documented limits (README of @ctx/core, SECURITY.md), independently of the
// zod schema that enforces them, so a drift between the two fails here.

const NUM_RUNS = 150;

const ID_MAX = 256;
const SUMMARY_MAX = 200_000;
const GOAL_MAX = 4_000;
const STEPS_MAX = 100;
const STEP_MAX = 2_000;

function hasLoneSurrogate(text: string): boolean {
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(index + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        index += 1;
        continue;
      }
      return true;
    }
    if (code >= 0xdc00 && code <= 0xdfff) return true;
  }
  return false;
}

/**
 * How long a text is. The limits are documented in UTF-16 code units (`string.length`); zod 4
 * measures code points. The two agree except for text with characters above U+FFFF near a limit:
 * there the property accepts either outcome, and `documented limits` below pins the unit.
 */
type Measure = (text: string) => number;
const codeUnits: Measure = (text) => text.length;
const codePoints: Measure = (text) => [...text].length;

function isStorableText(text: string, max: number, measure: Measure): boolean {
  return measure(text) <= max && !text.includes('\u0000') && !hasLoneSurrogate(text);
}

function isValidIdBy(id: string, measure: Measure): boolean {
  if (measure(id) < 1 || !isStorableText(id, ID_MAX, measure)) return false;
  for (const char of id) {
    const code = char.charCodeAt(0);
    if (code <= 0x1f || code === 0x7f) return false;
  }
  return true;
}

function isValidStepsBy(steps: string[] | null, measure: Measure): boolean {
  return (
    steps === null ||
    (steps.length <= STEPS_MAX && steps.every((step) => isStorableText(step, STEP_MAX, measure)))
  );
}

function isValidSnapshotBy(snapshot: SessionContext, measure: Measure): boolean {
  return (
    isValidIdBy(snapshot.sessionId, measure) &&
    (snapshot.userId === null || isValidIdBy(snapshot.userId, measure)) &&
    isStorableText(snapshot.summary, SUMMARY_MAX, measure) &&
    (snapshot.goal === null || isStorableText(snapshot.goal, GOAL_MAX, measure)) &&
    isValidStepsBy(snapshot.plan, measure) &&
    isValidStepsBy(snapshot.progress, measure)
  );
}

type Verdict = 'valid' | 'invalid' | 'either';

function verdict(byUnits: boolean, byPoints: boolean): Verdict {
  if (byUnits === byPoints) return byUnits ? 'valid' : 'invalid';
  return 'either';
}

const idVerdict = (id: string) => verdict(isValidIdBy(id, codeUnits), isValidIdBy(id, codePoints));
const snapshotVerdict = (snapshot: SessionContext) =>
  verdict(isValidSnapshotBy(snapshot, codeUnits), isValidSnapshotBy(snapshot, codePoints));

// One UTF-16 "unit" of generated text, weighted towards what breaks storage layers.
const fromCode = (code: number) => String.fromCharCode(code);
const char = fc
  .oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map(fromCode) },
    { weight: 2, arbitrary: fc.integer({ min: 0xa0, max: 0xffff }).map(fromCode) },
    { weight: 2, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map(String.fromCodePoint) },
    { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map(fromCode) },
    { weight: 1, arbitrary: fc.constantFrom(0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x7f) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '\u0085',
        '\u2028',
        '\u200b',
        '\ufeff',
        '\ufffe',
        '\uffff',
        '{',
        '}',
        '*',
        ':',
        '%',
        '\\',
        '"',
        "'",
        '$1',
        '</session_context>',
      ),
    },
  )
  .map((value) => (typeof value === 'number' ? fromCode(value) : value));
const plainChar = fc.constantFrom('a', 'é', '会', ' ', '-', '🚀');

// Text without NUL, lone surrogates or C0 controls: what a well-behaved caller sends.
const cleanChar = char.filter(
  (unit) => !/[\u0000-\u001f\u007f]/.test(unit) && !hasLoneSurrogate(unit),
);
const text = (maxLength: number) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: cleanChar, maxLength }) },
    { weight: 1, arbitrary: fc.string({ unit: char, maxLength }) },
  );

/** Text of `length - 2` to `length + 1` code units: a generated head padded with plain characters. */
const textNear = (length: number) =>
  fc
    .tuple(text(4), fc.integer({ min: length - 2, max: length + 1 }), plainChar)
    .map(([head, total, pad]) => {
      let body = head;
      while (body.length + pad.length <= total) body += pad;
      return body.padEnd(total, 'z');
    });

const sessionIdArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: cleanChar, minLength: 1, maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: char, minLength: 1, maxLength: 24 }) },
  { weight: 1, arbitrary: textNear(ID_MAX) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      'a\u0000b',
      '\ud800',
      'tail\udc00',
      'tab\there',
      'line\nbreak',
      'x'.repeat(ID_MAX),
      'x'.repeat(ID_MAX + 1),
      `${'x'.repeat(ID_MAX - 1)}🚀`,
      '{ctx}:s:other',
      "'; DROP TABLE x; --",
    ),
  },
);
const userIdArb = fc.option(sessionIdArb, { nil: null, freq: 4 });
const stepsArb = fc.option(
  fc.oneof(
    { weight: 4, arbitrary: fc.array(text(40), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.array(fc.constant('step'), { minLength: 99, maxLength: 101 }) },
    { weight: 1, arbitrary: textNear(STEP_MAX).map((step) => [step]) },
  ),
  { nil: null, freq: 3 },
);
const contentArb = fc.record({
  summary: fc.oneof(
    { weight: 5, arbitrary: text(200) },
    { weight: 1, arbitrary: textNear(SUMMARY_MAX) },
  ),
  goal: fc.option(
    fc.oneof({ weight: 5, arbitrary: text(80) }, { weight: 1, arbitrary: textNear(GOAL_MAX) }),
    {
      nil: null,
      freq: 3,
    },
  ),
  plan: stepsArb,
  progress: stepsArb,
});

const TIME = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));

function snapshotOf(
  sessionId: string,
  userId: string | null,
  content: Pick<SessionContext, 'summary' | 'goal' | 'plan' | 'progress'>,
): SessionContext {
  // Repositories return `fields` on every read (null when the session has no custom fields).
  return {
    sessionId,
    userId,
    ...content,
    fields: null,
    createdAt: TIME,
    updatedAt: TIME,
    version: 1,
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return undefined;
}

function expectInvalidInput(error: unknown, what: string): void {
  expect(ContextError.isInstance(error), `${what}: ${String(error)}`).toBe(true);
  expect((error as ContextError).code, `${what}: ${String(error)}`).toBe('INVALID_INPUT');
}

/**
 * Saves `snapshot` and checks the outcome against `expected`: an exact round trip (through the
 * returned value and a fresh `get`) or INVALID_INPUT. Anything else fails.
 */
async function saveOrRefuse(
  repository: ContextRepository,
  snapshot: SessionContext,
  expectedVersion: number | null,
  expected: Verdict,
): Promise<'stored' | 'refused'> {
  const copy = structuredClone(snapshot);
  let saved: SessionContext | undefined;
  let error: unknown;
  try {
    saved = await repository.save(snapshot, { expectedVersion });
  } catch (caught) {
    error = caught;
  }
  // The caller's object is never altered.
  expect(snapshot).toEqual(copy);
  if (error === undefined) {
    expect(expected, 'stored a snapshot that the documented limits refuse').not.toBe('invalid');
    // A create over a deleted id continues that id's versions (contracts v2): only the version
    // may differ from what was given, and only upwards.
    const version = saved?.version ?? Number.NaN;
    if (expectedVersion === null) expect(version).toBeGreaterThanOrEqual(copy.version);
    else expect(version).toBe(copy.version);
    const stored = { ...copy, version };
    expect(saved).toEqual(stored);
    expect(await repository.get(snapshot.sessionId)).toEqual(stored);
    return 'stored';
  }
  expectInvalidInput(error, 'save');
  expect(expected, `refused a valid snapshot: ${String(error)}`).not.toBe('valid');
  return 'refused';
}

/** Nothing of `snapshot` was stored: its id reads as absent (or is refused), its owner lists nothing. */
async function expectNothingStored(repository: ContextRepository, snapshot: SessionContext) {
  const read = await rejection(repository.get(snapshot.sessionId));
  if (read !== undefined) {
    expectInvalidInput(read, 'get(refused id)');
    expect(idVerdict(snapshot.sessionId)).not.toBe('valid');
  } else {
    expect(await repository.get(snapshot.sessionId)).toBeNull();
  }
  if (snapshot.userId !== null && idVerdict(snapshot.userId) === 'valid') {
    expect((await repository.list({ userId: snapshot.userId })).items).toEqual([]);
  }
}

describe.each(BACKENDS)('%s: generated ids and contents', (name) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await openBackend(name);
  });
  afterAll(async () => {
    await backend?.dispose();
  });

  it('save + get is an exact round trip, or INVALID_INPUT and nothing stored', async () => {
    const { repository } = backend;
    const outcomes = { stored: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(sessionIdArb, userIdArb, contentArb, async (sessionId, userId, content) => {
        const snapshot = snapshotOf(sessionId, userId, content);
        const outcome = await saveOrRefuse(repository, snapshot, null, snapshotVerdict(snapshot));
        outcomes[outcome] += 1;
        if (outcome === 'refused') {
          await expectNothingStored(repository, snapshot);
          return;
        }
        try {
          // Generated ids repeat across runs: a re-created id starts after its deleted version.
          const stored = (await repository.get(sessionId)) as SessionContext;
          if (userId !== null) {
            expect((await repository.list({ userId })).items).toEqual([stored]);
          }
          const next = {
            ...stored,
            goal: stored.goal === null ? 'g' : null,
            version: stored.version + 1,
          };
          expect(await saveOrRefuse(repository, next, stored.version, snapshotVerdict(next))).toBe(
            'stored',
          );
        } finally {
          await repository.delete(sessionId);
        }
        expect(await repository.get(sessionId)).toBeNull();
      }),
      { numRuns: NUM_RUNS },
    );
    // The generators exercise both outcomes.
    expect(outcomes.stored).toBeGreaterThan(NUM_RUNS / 10);
    expect(outcomes.refused).toBeGreaterThan(NUM_RUNS / 10);
  });

  it('a stored session is never changed by a refused update', async () => {
    const { repository } = backend;
    await fc.assert(
      fc.asyncProperty(contentArb, async (content) => {
        const sessionId = `prop-${Math.random().toString(36).slice(2)}`;
        const first = snapshotOf(sessionId, 'owner', {
          summary: 'kept',
          goal: null,
          plan: null,
          progress: null,
        });
        await repository.save(first, { expectedVersion: null });
        try {
          const next = { ...snapshotOf(sessionId, 'owner', content), version: 2 };
          if ((await saveOrRefuse(repository, next, 1, snapshotVerdict(next))) === 'refused') {
            expect(await repository.get(sessionId)).toEqual(first);
          }
        } finally {
          await repository.delete(sessionId);
        }
      }),
      { numRuns: Math.round(NUM_RUNS / 2) },
    );
  });

  it('timestamps anywhere in the range of a Date round-trip to the millisecond, or INVALID_INPUT', async () => {
    const { repository } = backend;
    const instant = fc.oneof(
      fc.integer({ min: -8.64e15, max: 8.64e15 }),
      // Years 0001 to 9999, where most real values are.
      fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 }),
      // The edges: what a Date can hold, year 0001, and PostgreSQL's first instant (4714-11-24 BC).
      fc.constantFrom(-8.64e15, 8.64e15, -62_135_596_800_000, -210_866_803_200_000, -1, 0, 1),
      fc.constant(-210_866_803_200_001),
    );
    await fc.assert(
      fc.asyncProperty(instant, instant, async (created, updated) => {
        const sessionId = `prop-time-${Math.random().toString(36).slice(2)}`;
        const snapshot: SessionContext = {
          ...snapshotOf(sessionId, null, { summary: 's', goal: null, plan: null, progress: null }),
          createdAt: new Date(created),
          updatedAt: new Date(updated),
        };
        try {
          await saveOrRefuse(repository, snapshot, null, 'either');
        } finally {
          await repository.delete(sessionId);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe.each(BACKENDS)('%s: documented limits', (name) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await openBackend(name);
  });
  afterAll(async () => {
    await backend?.dispose();
  });

  const rocket = '🚀'; // one code point, two UTF-16 code units
  const base = () =>
    snapshotOf(`limits-${Math.random().toString(36).slice(2)}`, null, {
      summary: 's',
      goal: null,
      plan: null,
      progress: null,
    });

  it('limits are exact at the boundary (in ASCII, where every measure agrees)', async () => {
    const { repository } = backend;
    const cases: Array<[string, (snapshot: SessionContext) => SessionContext, Verdict]> = [
      ['id of 256', (s) => ({ ...s, sessionId: `${s.sessionId}`.padEnd(ID_MAX, 'i') }), 'valid'],
      [
        'id of 257',
        (s) => ({ ...s, sessionId: `${s.sessionId}`.padEnd(ID_MAX + 1, 'i') }),
        'invalid',
      ],
      ['summary of 200 000', (s) => ({ ...s, summary: 'a'.repeat(SUMMARY_MAX) }), 'valid'],
      ['summary of 200 001', (s) => ({ ...s, summary: 'a'.repeat(SUMMARY_MAX + 1) }), 'invalid'],
      ['goal of 4 000', (s) => ({ ...s, goal: 'g'.repeat(GOAL_MAX) }), 'valid'],
      ['goal of 4 001', (s) => ({ ...s, goal: 'g'.repeat(GOAL_MAX + 1) }), 'invalid'],
      [
        '100 steps',
        (s) => ({ ...s, plan: Array.from({ length: STEPS_MAX }, (_, i) => `${i}`) }),
        'valid',
      ],
      [
        '101 steps',
        (s) => ({ ...s, plan: Array.from({ length: STEPS_MAX + 1 }, (_, i) => `${i}`) }),
        'invalid',
      ],
      ['step of 2 000', (s) => ({ ...s, progress: ['p'.repeat(STEP_MAX)] }), 'valid'],
      ['step of 2 001', (s) => ({ ...s, progress: ['p'.repeat(STEP_MAX + 1)] }), 'invalid'],
    ];
    for (const [label, build, expected] of cases) {
      const snapshot = build(base());
      try {
        const outcome = await saveOrRefuse(repository, snapshot, null, expected);
        expect(outcome, label).toBe(expected === 'valid' ? 'stored' : 'refused');
      } finally {
        if (idVerdict(snapshot.sessionId) === 'valid') await repository.delete(snapshot.sessionId);
      }
    }
  });

  it('update refuses messages over the documented limits and stores nothing', async () => {
    const extractor = createScriptedExtractor({ fallback: { summary: 'extracted' } });
    const store = new SessionContextStore({ repository: backend.repository, extractor });
    const sessionId = `limits-${Math.random().toString(36).slice(2)}`;
    const user = (content: string) => ({ role: 'user' as const, content });
    const refused = [
      [user('m'.repeat(1_000_001))],
      Array.from({ length: 1_001 }, () => user('hi')),
      [{ role: 'narrator', content: 'hi' }],
    ] as Array<Array<{ role: 'user'; content: string }>>;
    for (const messages of refused) {
      expectInvalidInput(await rejection(store.update({ sessionId, messages })), 'update');
    }
    expect(await backend.repository.get(sessionId)).toBeNull();
    expect(extractor.requests).toHaveLength(0);
    const accepted = await store.update({
      sessionId,
      messages: [user('m'.repeat(1_000_000)), ...Array.from({ length: 999 }, () => user('hi'))],
    });
    expect(accepted.context?.version).toBe(1);
    await backend.repository.delete(sessionId);
  });

  it('limits count UTF-16 code units, as LIMITS documents', async () => {
    const { repository } = backend;
    // Within the limit in code points, over it in code units.
    const cases: Array<[string, (snapshot: SessionContext) => SessionContext]> = [
      ['id', (s) => ({ ...s, sessionId: rocket.repeat(ID_MAX / 2 + 1) })],
      ['summary', (s) => ({ ...s, summary: rocket.repeat(SUMMARY_MAX / 2 + 1) })],
      ['goal', (s) => ({ ...s, goal: rocket.repeat(GOAL_MAX / 2 + 1) })],
      ['step', (s) => ({ ...s, plan: [rocket.repeat(STEP_MAX / 2 + 1)] })],
    ];
    const stored: string[] = [];
    for (const [label, build] of cases) {
      const snapshot = build(base());
      const error = await rejection(repository.save(snapshot, { expectedVersion: null }));
      if (error === undefined) stored.push(label);
      else expectInvalidInput(error, label);
      // An over-long id is refused by delete too; the other cases use a valid id.
      if (label !== 'id' || error === undefined) await repository.delete(snapshot.sessionId);
    }
    expect(stored, 'accepted although longer than the documented limit in string.length').toEqual(
      [],
    );
  });
});

describe.each(BACKENDS)('%s: generated ids through SessionContextStore', (name) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await openBackend(name);
  });
  afterAll(async () => {
    await backend?.dispose();
  });

  it('get, render, update and delete answer normally for valid ids and INVALID_INPUT for the rest', async () => {
    const extractor = createScriptedExtractor({
      fallback: (request) => ({ summary: request.messages.map((m) => m.content).join(' ') }),
    });
    const store = new SessionContextStore({ repository: backend.repository, extractor });
    await fc.assert(
      fc.asyncProperty(sessionIdArb, text(60), async (sessionId, content) => {
        const expected = idVerdict(sessionId);
        const read = await rejection(store.get(sessionId));
        if (read !== undefined) {
          expectInvalidInput(read, 'store.get');
          expect(expected, `refused a valid id: ${String(read)}`).not.toBe('valid');
          expectInvalidInput(await rejection(store.render(sessionId)), 'store.render');
          expectInvalidInput(await rejection(store.delete(sessionId)), 'store.delete');
          expectInvalidInput(
            await rejection(
              store.update({ sessionId, messages: [{ role: 'user', content: 'hello' }] }),
            ),
            'store.update',
          );
          return;
        }
        expect(expected, 'accepted an id the documented limits refuse').not.toBe('invalid');
        try {
          expect(await store.get(sessionId)).toBeNull();
          expect(await store.render(sessionId)).toBe('');
          const message = `x${content}`;
          const input = { sessionId, messages: [{ role: 'user' as const, content: message }] };
          if (message.includes('\u0000') || hasLoneSurrogate(message)) {
            expectInvalidInput(await rejection(store.update(input)), 'store.update(bad message)');
            expect(await store.get(sessionId)).toBeNull();
            return;
          }
          const result = await store.update(input);
          expect(result.context?.sessionId).toBe(sessionId);
          expect((await store.get(sessionId))?.summary).toBe(message.trim());
        } finally {
          await store.delete(sessionId);
        }
        expect(await store.get(sessionId)).toBeNull();
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
