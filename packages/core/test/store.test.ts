import { describe, expect, it } from 'vitest';
import {
  type ContextError,
  type ContextRepository,
  createMemoryRepository,
  ExtractionError,
  type Message,
  type SessionContext,
  type SessionContextEvent,
  SessionContextStore,
  StorageError,
} from '../src/index.js';
import { createScriptedExtractor } from '../src/testing/index.js';

const user = (content: string): Message => ({ role: 'user', content });
const assistant = (content: string): Message => ({ role: 'assistant', content });

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as ContextError).code;
  }
  throw new Error('expected a rejection');
}

describe('reference scenario 1: a REST API design conversation', () => {
  it('gives the second update the first snapshot and only the new messages', async () => {
    const repository = createMemoryRepository();
    const extractor = createScriptedExtractor({
      replies: [
        {
          summary:
            'User is designing a REST API for a todo app and asked whether to use PUT or PATCH for updates. Assistant recommended PATCH for partial updates and PUT for full replacement.',
        },
        {
          draft: {
            summary:
              'User is designing a REST API for a todo app. Decided: PATCH for partial updates, PUT for full replacement. Delete endpoint: DELETE /todos/{id} returning 204 No Content.',
          },
          usage: { inputTokens: 420, outputTokens: 60 },
        },
      ],
    });
    const events: SessionContextEvent[] = [];
    const store = new SessionContextStore({
      repository,
      extractor,
      config: { onEvent: (event) => events.push(event) },
    });
    const turn1 = [
      user("I'm designing a REST API for a todo app. Should I use PUT or PATCH for updates?"),
      assistant('Use PATCH for partial updates and PUT when the client replaces the whole todo.'),
    ];
    const first = await store.update({ sessionId: 'todo-api', userId: 'ada', messages: turn1 });
    expect(first.updated).toBe(true);
    expect(first.context?.version).toBe(1);
    expect(first.context?.userId).toBe('ada');

    const turn2 = [
      user('What about the delete endpoint?'),
      assistant('DELETE /todos/{id}, answering 204 No Content.'),
    ];
    const second = await store.update({ sessionId: 'todo-api', userId: 'ada', messages: turn2 });

    expect(extractor.requests).toHaveLength(2);
    expect(extractor.requests[0]?.previous).toBeNull();
    expect(extractor.requests[0]?.messages).toEqual(turn1);
    expect(extractor.requests[1]?.previous).toEqual(first.context);
    expect(extractor.requests[1]?.messages).toEqual(turn2);
    expect(extractor.requests[1]?.planning).toBe(false);

    expect(second.context?.version).toBe(2);
    expect(second.context?.createdAt).toEqual(first.context?.createdAt);
    expect(second.usage).toEqual({ inputTokens: 420, outputTokens: 60 });
    expect(await store.render('todo-api', { userId: 'ada' })).toBe(
      '<session_context>\nSummary: User is designing a REST API for a todo app. Decided: PATCH for partial updates, PUT for full replacement. Delete endpoint: DELETE /todos/{id} returning 204 No Content.\n</session_context>',
    );
    const updated = events.filter((event) => event.type === 'updated');
    expect(updated).toHaveLength(2);
    expect(updated[1]).toMatchObject({ version: 2, usage: { inputTokens: 420, outputTokens: 60 } });
    expect(typeof (updated[1] as { durationMs: number }).durationMs).toBe('number');
  });
});

describe('reference scenario 2: planning a deployment', () => {
  const steps = [
    'Containerize the app with Docker',
    'Set up a managed PostgreSQL database',
    'Configure environment variables and secrets',
    'Deploy behind a reverse proxy with HTTPS',
    'Add monitoring and logging',
  ];

  it('ends with the goal, the plan and step 1 completed, rendered as designed', async () => {
    const extractor = createScriptedExtractor({
      replies: [
        {
          summary: 'User wants to deploy a Python app to production; assistant gave five steps.',
          goal: 'Deploy a Python app to production',
          plan: steps,
          progress: [],
        },
        (request) => ({
          summary:
            'User is deploying a Python app to production and has containerized it; next is the database.',
          goal: request.previous?.goal ?? null,
          plan: request.previous?.plan ?? null,
          progress: [steps[0] as string],
        }),
      ],
    });
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor,
      config: { enablePlanning: true },
    });
    await store.update({
      sessionId: 'deploy',
      messages: [
        user('Help me deploy a Python app to production. Give me the steps.'),
        assistant(steps.map((step, index) => `${index + 1}. ${step}`).join('\n')),
      ],
    });
    const result = await store.update({
      sessionId: 'deploy',
      messages: [user("Done with step 1. What's next?"), assistant('Next: set up the database.')],
    });
    expect(extractor.requests[1]?.planning).toBe(true);
    expect(result.context).toMatchObject({
      goal: 'Deploy a Python app to production',
      plan: steps,
      progress: [steps[0]],
      version: 2,
    });
    expect(await store.render('deploy')).toBe(
      [
        '<session_context>',
        'Summary: User is deploying a Python app to production and has containerized it; next is the database.',
        '',
        'Goal: Deploy a Python app to production',
        '',
        'Plan:',
        ...steps.map((step, index) => `  ${index + 1}. ${step}`),
        '',
        'Completed:',
        `  ✓ ${steps[0]}`,
        '</session_context>',
      ].join('\n'),
    );
  });

  it('keeps completed steps completed and drops steps that are not in the plan', async () => {
    const extractor = createScriptedExtractor({
      replies: [
        { summary: 'a', goal: 'G', plan: ['One', 'Two', 'Three'], progress: ['one', 'Nope'] },
        { summary: 'b', goal: null, plan: ['One', 'Two', 'Three'], progress: ['Three'] },
        { summary: 'c', goal: 'G', plan: ['Two', 'Three', 'Four'], progress: [] },
      ],
    });
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor,
      config: { enablePlanning: true },
    });
    const first = await store.update({ sessionId: 'p', messages: [user('go')] });
    expect(first.context?.progress).toEqual(['One']);
    const second = await store.update({ sessionId: 'p', messages: [user('go')] });
    expect(second.context?.goal).toBe('G');
    expect(second.context?.progress).toEqual(['One', 'Three']);
    const third = await store.update({ sessionId: 'p', messages: [user('replan')] });
    expect(third.context?.plan).toEqual(['Two', 'Three', 'Four']);
    expect(third.context?.progress).toEqual(['Three']);
  });

  it('summary mode never writes goal, plan or progress', async () => {
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({
        fallback: { summary: 'S', goal: 'G', plan: ['A'], progress: ['A'] },
      }),
    });
    const result = await store.update({ sessionId: 's', messages: [user('hi')] });
    expect(result.context).toMatchObject({ summary: 'S', goal: null, plan: null, progress: null });
  });
});

describe('concurrency', () => {
  /** An extractor that appends every message of the fold to the summary, one per line, and counts calls. */
  const appendingExtractor = (delayMs = 3) =>
    createScriptedExtractor({
      fallback: async (request) => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * delayMs));
        const lines = request.messages.map((message) => message.content);
        return { summary: [request.previous?.summary ?? '', ...lines].filter(Boolean).join('\n') };
      },
    });

  it('2 stores × 8 concurrent updates on one session: every turn folded exactly once, no more extractions than turns', async () => {
    const repository = createMemoryRepository();
    const extractor = appendingExtractor();
    let conflicts = 0;
    const config = {
      onEvent: (event: SessionContextEvent) => {
        if (event.type === 'conflict-retried') conflicts += 1;
      },
    };
    const stores = [
      new SessionContextStore({ repository, extractor, config }),
      new SessionContextStore({ repository, extractor, config }),
    ];
    const marks = Array.from({ length: 16 }, (_, index) => `m${index}`);
    const results = await Promise.all(
      marks.map((mark, index) =>
        (stores[index % 2] as SessionContextStore).update({
          sessionId: 'shared',
          messages: [user(mark)],
        }),
      ),
    );
    for (const result of results) expect(result.updated).toBe(true);
    const final = (await repository.get('shared')) as SessionContext;
    expect(final.summary.split('\n').sort()).toEqual([...marks].sort());
    expect(extractor.requests.length).toBeLessThanOrEqual(marks.length);
    expect(final.version).toBe(extractor.requests.length);
    expect(conflicts).toBe(0);
    // Each caller got back a snapshot that holds its own turn.
    results.forEach((result, index) => {
      expect(result.context?.summary.split('\n')).toContain(marks[index]);
    });
  });

  it('one folder at a time inside a store: concurrent updates share extractions', async () => {
    let running = 0;
    let maxRunning = 0;
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({
        fallback: async (request) => {
          running += 1;
          maxRunning = Math.max(maxRunning, running);
          await new Promise((resolve) => setTimeout(resolve, 2));
          running -= 1;
          return {
            summary: `${request.previous?.summary ?? ''}${'+'.repeat(request.messages.length)}`,
          };
        },
      }),
      config: { maxConflictRetries: 0 },
    });
    await Promise.all(
      Array.from({ length: 10 }, () => store.update({ sessionId: 'x', messages: [user('a')] })),
    );
    expect(maxRunning).toBe(1);
    expect((await store.get('x'))?.summary).toBe('++++++++++');
  });

  it('the same turn id submitted twice is folded once', async () => {
    const extractor = appendingExtractor(0);
    const store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
    const turn = { sessionId: 's', turnId: 'request-7', messages: [user('pay the invoice')] };
    const [first, second] = await Promise.all([store.update(turn), store.update(turn)]);
    await store.update(turn);
    expect(first.turnId).toBe('request-7');
    expect(second.turnId).toBe('request-7');
    expect((await store.get('s'))?.summary).toBe('pay the invoice');
    expect(extractor.requests).toHaveLength(1);
  });

  it('update waits for the folder that holds the lease instead of extracting again', async () => {
    const repository = createMemoryRepository();
    const extractor = appendingExtractor(0);
    const store = new SessionContextStore({ repository, extractor });
    await repository.acquireLease?.('s', { holder: 'another-instance', ttlMs: 60_000 });
    const waiting = store.update({ sessionId: 's', messages: [user('mine')] });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(extractor.requests).toHaveLength(0);
    // The other instance folds the turn (as a fold does: snapshot and folded turns in one save).
    const [pending] = await store.pendingTurns('s');
    const now = new Date();
    await repository.save(
      {
        sessionId: 's',
        userId: null,
        summary: 'folded elsewhere',
        goal: null,
        plan: null,
        progress: null,
        createdAt: now,
        updatedAt: now,
        version: 1,
      },
      { expectedVersion: null, foldedTurnIds: [pending?.turnId as string] },
    );
    const result = await waiting;
    expect(result.context?.summary).toBe('folded elsewhere');
    expect(result.usage).toBeUndefined();
    expect(extractor.requests).toHaveLength(0);
  });

  it("a crashed folder's lease lapses and the waiting update takes over", async () => {
    const repository = createMemoryRepository();
    const extractor = appendingExtractor(0);
    const store = new SessionContextStore({
      repository,
      extractor,
      config: { fold: { leaseTtlMs: 150 } },
    });
    await repository.acquireLease?.('s', { holder: 'crashed-instance', ttlMs: 150 });
    const started = Date.now();
    const result = await store.update({ sessionId: 's', messages: [user('mine')] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(result.context?.summary).toBe('mine');
    expect(extractor.requests).toHaveLength(1);
  });
});

describe('failures leave the stored snapshot untouched', () => {
  async function seeded(extractorReplies: Parameters<typeof createScriptedExtractor>[0]) {
    const repository = createMemoryRepository();
    const store = new SessionContextStore({
      repository,
      extractor: createScriptedExtractor({
        replies: [{ summary: 'Stored.' }, ...(extractorReplies?.replies ?? [])],
        ...(extractorReplies?.fallback ? { fallback: extractorReplies.fallback } : {}),
      }),
    });
    await store.update({ sessionId: 's', messages: [user('one')] });
    return { repository, store, before: await repository.get('s') };
  }

  it.each([
    ['a typed extractor error', new ExtractionError('server_error', 'HTTP 500')],
    ['an untyped extractor error', new TypeError('boom')],
  ])('%s → EXTRACTION_FAILED', async (_name, error) => {
    const { repository, store, before } = await seeded({ replies: [error] });
    expect(await codeOf(store.update({ sessionId: 's', messages: [user('two')] }))).toBe(
      'EXTRACTION_FAILED',
    );
    expect(await repository.get('s')).toEqual(before);
  });

  it('an invalid draft → EXTRACTION_FAILED', async () => {
    const { repository, store, before } = await seeded({
      replies: [() => ({ summary: 42 }) as never],
    });
    expect(await codeOf(store.update({ sessionId: 's', messages: [user('two')] }))).toBe(
      'EXTRACTION_FAILED',
    );
    expect(await repository.get('s')).toEqual(before);
  });

  it('an extractor that returns garbage through a custom implementation → EXTRACTION_FAILED', async () => {
    const repository = createMemoryRepository();
    const store = new SessionContextStore({
      repository,
      extractor: { extract: async () => ({ draft: { summary: 'x'.repeat(300_000) } }) },
    });
    expect(await codeOf(store.update({ sessionId: 's', messages: [user('two')] }))).toBe(
      'EXTRACTION_FAILED',
    );
    expect(await repository.get('s')).toBeNull();
  });

  it('a failing repository save → typed storage error, snapshot unchanged', async () => {
    const inner = createMemoryRepository();
    let failSaves = false;
    const repository: ContextRepository = {
      ...inner,
      get: (id) => inner.get(id),
      list: (query) => inner.list(query),
      delete: (id) => inner.delete(id),
      close: () => inner.close(),
      save: async (snapshot, options) => {
        if (failSaves) throw new Error('disk full');
        return inner.save(snapshot, options);
      },
    };
    const store = new SessionContextStore({
      repository,
      extractor: createScriptedExtractor({ fallback: { summary: 'S' } }),
    });
    await store.update({ sessionId: 's', messages: [user('one')] });
    const before = await inner.get('s');
    failSaves = true;
    expect(await codeOf(store.update({ sessionId: 's', messages: [user('two')] }))).toBe(
      'STORAGE_ERROR',
    );
    expect(await inner.get('s')).toEqual(before);
  });

  it('a repository outage surfaces as STORAGE_UNAVAILABLE', async () => {
    const inner = createMemoryRepository();
    const store = new SessionContextStore({
      repository: {
        ...inner,
        get: async () => {
          throw new StorageError('STORAGE_UNAVAILABLE', 'connection refused');
        },
      },
      extractor: createScriptedExtractor({ fallback: { summary: 'S' } }),
    });
    expect(await codeOf(store.update({ sessionId: 's', messages: [user('one')] }))).toBe(
      'STORAGE_UNAVAILABLE',
    );
  });

  it('a slow extractor hits the extraction timeout', async () => {
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({ fallback: { summary: 'late' }, delayMs: 5_000 }),
      config: { extractionTimeoutMs: 50 },
    });
    const started = Date.now();
    const error = await store
      .update({ sessionId: 's', messages: [user('one')] })
      .catch((caught: unknown) => caught);
    expect(ExtractionError.isInstance(error) && error.reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await store.get('s')).toBeNull();
  });

  it('a caller abort of an extractor that throws untyped errors is reported as aborted', async () => {
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: {
        extract: (_request, options) =>
          new Promise((_resolve, reject) => {
            options?.signal?.addEventListener('abort', () =>
              reject(new DOMException('This operation was aborted', 'AbortError')),
            );
          }),
      },
    });
    const controller = new AbortController();
    const pending = store.update(
      { sessionId: 's', messages: [user('x')] },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 20);
    const error = await pending.catch((caught: unknown) => caught);
    expect(ExtractionError.isInstance(error) && error.reason).toBe('aborted');
  });

  it('a caller abort stops the update', async () => {
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({ fallback: { summary: 'late' }, delayMs: 5_000 }),
    });
    const controller = new AbortController();
    const pending = store.update(
      { sessionId: 's', messages: [user('one')] },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 20);
    const error = await pending.catch((caught: unknown) => caught);
    expect(ExtractionError.isInstance(error) && error.reason).toBe('aborted');
  });
});

describe('policy: skipping turns', () => {
  it('skips turns with nothing conversational without calling the model', async () => {
    const extractor = createScriptedExtractor({ fallback: { summary: 'S' } });
    const events: SessionContextEvent[] = [];
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor,
      config: { onEvent: (event) => events.push(event) },
    });
    for (const messages of [
      [],
      [{ role: 'tool' as const, content: '{"ok":true}' }],
      [{ role: 'system' as const, content: 'You are helpful.' }],
      [user('   \n'), assistant('')],
    ]) {
      const result = await store.update({ sessionId: 's', messages });
      expect(result).toMatchObject({ updated: false, skipped: 'no-conversational-content' });
    }
    expect(extractor.requests).toHaveLength(0);
    expect(events.map((event) => event.type)).toEqual(['skipped', 'skipped', 'skipped', 'skipped']);
  });

  it('does not send system messages to the extractor', async () => {
    const extractor = createScriptedExtractor({ fallback: { summary: 'S' } });
    const store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
    await store.update({
      sessionId: 's',
      messages: [{ role: 'system', content: 'sys' }, user('u'), { role: 'tool', content: 't' }],
    });
    expect(extractor.requests[0]?.messages).toEqual([user('u'), { role: 'tool', content: 't' }]);
  });
});

describe('ownership', () => {
  it("refuses to read, update or delete another user's session", async () => {
    const extractor = createScriptedExtractor({ fallback: { summary: 'S' } });
    const store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
    await store.update({ sessionId: 's', userId: 'alice', messages: [user('mine')] });
    expect(
      await codeOf(store.update({ sessionId: 's', userId: 'bob', messages: [user('x')] })),
    ).toBe('OWNERSHIP_MISMATCH');
    expect(extractor.requests).toHaveLength(1);
    expect(await codeOf(store.get('s', { userId: 'bob' }))).toBe('OWNERSHIP_MISMATCH');
    expect(await codeOf(store.render('s', { userId: 'bob' }))).toBe('OWNERSHIP_MISMATCH');
    expect(await codeOf(store.delete('s', { userId: 'bob' }))).toBe('OWNERSHIP_MISMATCH');
    expect((await store.list({ userId: 'bob' })).items).toEqual([]);
    expect((await store.get('s', { userId: 'alice' }))?.version).toBe(1);
    expect((await store.list({ userId: 'alice' })).items.map((item) => item.sessionId)).toEqual([
      's',
    ]);
    expect(await store.delete('s', { userId: 'alice' })).toBe(true);
  });
});

describe('background mode (the turn log)', () => {
  it('resolves once the turn is recorded; flush waits for the fold', async () => {
    const repository = createMemoryRepository();
    const store = new SessionContextStore({
      repository,
      extractor: createScriptedExtractor({ fallback: { summary: 'S' }, delayMs: 30 }),
    });
    const { turnId } = await store.schedule({ sessionId: 's', messages: [user('hi')] });
    expect(await repository.get('s')).toBeNull();
    expect((await store.pendingTurns('s')).map((turn) => turn.turnId)).toEqual([turnId]);
    await store.flush();
    expect((await repository.get('s'))?.summary).toBe('S');
    expect(await store.pendingTurns('s')).toEqual([]);
  });

  it('rejects invalid input, recording nothing', async () => {
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor(),
    });
    await expect(store.schedule({ sessionId: '', messages: [] })).rejects.toThrow(/sessionId/);
  });

  it('merges turns recorded while a fold runs into one extraction', async () => {
    const extractor = createScriptedExtractor({
      fallback: (request) => ({
        summary: `${request.previous?.summary ?? ''}[${request.messages.map((m) => m.content).join(',')}]`,
      }),
      delayMs: 20,
    });
    const store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
    await store.schedule({ sessionId: 's', messages: [user('1')] });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(extractor.requests).toHaveLength(1);
    await store.schedule({ sessionId: 's', messages: [user('2')] });
    await store.schedule({ sessionId: 's', messages: [user('3')] });
    await store.flush();
    expect(extractor.requests).toHaveLength(2);
    expect((await store.get('s'))?.summary).toBe('[1][2,3]');
  });

  describe('foldDelayMs: turns that arrive while a fold waits share its extraction', () => {
    const bracketing = () =>
      createScriptedExtractor({
        fallback: (request) => ({
          summary: `${request.previous?.summary ?? ''}[${request.messages.map((m) => m.content).join(',')}]`,
        }),
      });

    it('three steps of a tool loop, the last without delay: one extraction with all of them', async () => {
      const extractor = bracketing();
      const store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
      await store.schedule({ sessionId: 's', messages: [user('1')] }, { foldDelayMs: 60_000 });
      await store.schedule({ sessionId: 's', messages: [assistant('2')] }, { foldDelayMs: 60_000 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(extractor.requests).toHaveLength(0);
      const started = performance.now();
      await store.schedule({ sessionId: 's', messages: [assistant('3')] });
      await new Promise<void>((resolve) => {
        const poll = () =>
          extractor.requests.length > 0 ? resolve() : setTimeout(poll, 5).unref();
        poll();
      });
      // Folded at once, not after the minute the earlier turns allowed.
      expect(performance.now() - started).toBeLessThan(30_000);
      await store.flush();
      expect(extractor.requests).toHaveLength(1);
      expect((await store.get('s'))?.summary).toBe('[1,2,3]');
      expect((await store.get('s'))?.version).toBe(1);
    });

    it('a waiting fold runs on its own when its delay is up', async () => {
      const extractor = bracketing();
      const folded = new Promise<void>((resolve) => {
        const store = new SessionContextStore({
          repository: createMemoryRepository(),
          extractor,
          config: { onEvent: (event) => event.type === 'updated' && resolve() },
        });
        void store.schedule({ sessionId: 's', messages: [user('1')] }, { foldDelayMs: 150 });
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(extractor.requests).toHaveLength(0);
      await folded;
      expect(extractor.requests).toHaveLength(1);
    });

    it('flush and close fold a waiting session at once', async () => {
      const extractor = bracketing();
      const repository = createMemoryRepository();
      const store = new SessionContextStore({ repository, extractor });
      await store.schedule({ sessionId: 'a', messages: [user('1')] }, { foldDelayMs: 3_600_000 });
      const started = performance.now();
      await store.flush();
      expect((await store.get('a'))?.summary).toBe('[1]');
      await store.schedule({ sessionId: 'b', messages: [user('2')] }, { foldDelayMs: 3_600_000 });
      await store.close();
      expect(performance.now() - started).toBeLessThan(10_000);
      expect((await repository.get('b'))?.summary).toBe('[2]');
    });

    it('an update of the session folds the waiting turns with its own', async () => {
      const extractor = bracketing();
      const store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
      await store.schedule({ sessionId: 's', messages: [user('1')] }, { foldDelayMs: 60_000 });
      const result = await store.update({ sessionId: 's', messages: [assistant('2')] });
      expect(result.context?.summary).toBe('[1,2]');
      await store.flush();
      expect(extractor.requests).toHaveLength(1);
    });

    it.each([
      [{ foldDelayMs: -1 }],
      [{ foldDelayMs: 1.5 }],
      [{ foldDelayMs: 3_600_001 }],
      [{ foldDelayMs: '10' }],
      [{ foldDelay: 10 }],
    ])('refuses %j with INVALID_INPUT, recording nothing', async (options) => {
      const store = new SessionContextStore({
        repository: createMemoryRepository(),
        extractor: bracketing(),
      });
      expect(
        await codeOf(
          store.schedule({ sessionId: 's', messages: [user('1')] }, options as { foldDelayMs: 1 }),
        ),
      ).toBe('INVALID_INPUT');
      expect(await store.pendingTurns('s')).toEqual([]);
    });
  });

  it('retries retryable failures with backoff, honouring retry-after', async () => {
    const events: SessionContextEvent[] = [];
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({
        replies: [
          new ExtractionError('rate_limit', '429', { retryAfterMs: 40 }),
          new ExtractionError('server_error', '503'),
        ],
        fallback: { summary: 'Recovered.' },
      }),
      config: {
        background: { initialDelayMs: 5, maxDelayMs: 1_000 },
        onEvent: (event) => events.push(event),
      },
    });
    await store.schedule({ sessionId: 's', messages: [user('hi')] });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await store.flush();
    expect((await store.get('s'))?.summary).toBe('Recovered.');
    const failed = events.filter((event) => event.type === 'failed');
    expect(failed).toMatchObject([
      { attempt: 1, willRetry: true, retryInMs: 40 },
      { attempt: 2, willRetry: true, retryInMs: 10 },
    ]);
    expect(events.at(-1)).toMatchObject({ type: 'updated', background: true, turns: 1 });
  });

  it('a finally failed fold leaves the turns in the log; the next update folds them first', async () => {
    const events: SessionContextEvent[] = [];
    const extractor = createScriptedExtractor({
      replies: [
        new ExtractionError('server_error', 'down'),
        new ExtractionError('server_error', 'down'),
      ],
      fallback: (request) => ({ summary: request.messages.map((m) => m.content).join(' ') }),
    });
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor,
      config: {
        background: { maxAttempts: 2, initialDelayMs: 1 },
        onEvent: (event) => events.push(event),
      },
    });
    await store.schedule({ sessionId: 's', messages: [user('turn one'), assistant('reply one')] });
    await store.flush();
    expect(await store.get('s')).toBeNull();
    expect(await store.pendingTurns('s')).toHaveLength(1);
    expect(events.filter((event) => event.type === 'failed').at(-1)).toMatchObject({
      willRetry: false,
    });
    const result = await store.update({ sessionId: 's', messages: [user('turn two')] });
    expect(result.context?.summary).toBe('turn one reply one turn two');
    expect(await store.pendingTurns('s')).toEqual([]);
  });

  it("another instance's next update folds the turns this one could not, before its own, in order", async () => {
    const repository = createMemoryRepository();
    const down = createScriptedExtractor({
      fallback: new ExtractionError('server_error', 'model outage'),
    });
    const instanceA = new SessionContextStore({
      repository,
      extractor: down,
      config: { background: { maxAttempts: 1 }, onEvent: () => {} },
    });
    await instanceA.schedule({ sessionId: 's', messages: [user('older turn on A')] });
    await instanceA.flush();
    const up = createScriptedExtractor({
      fallback: (request) => ({ summary: request.messages.map((m) => m.content).join(' | ') }),
    });
    const instanceB = new SessionContextStore({ repository, extractor: up });
    const result = await instanceB.update({ sessionId: 's', messages: [user('newer turn on B')] });
    expect(result.context?.summary).toBe('older turn on A | newer turn on B');
    expect(up.requests).toHaveLength(1);
  });

  it('a big turn is never cut: pending input over the budget is folded in several extractions, oldest first', async () => {
    const extractor = createScriptedExtractor({
      fallback: (request) => ({
        summary: [request.previous?.summary ?? '', `${request.messages.length} msgs`]
          .filter(Boolean)
          .join(' / '),
      }),
    });
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor,
      config: { fold: { maxInputChars: 1_000 } },
    });
    const long = 'x'.repeat(600);
    for (let index = 0; index < 3; index += 1) {
      await store.schedule({ sessionId: 's', messages: [user(`${index}${long}`)] });
    }
    await store.schedule({
      sessionId: 's',
      messages: Array.from({ length: 500 }, () => user('y')),
    });
    await store.flush();
    expect(extractor.requests.map((request) => request.messages.length)).toEqual([1, 1, 1, 500]);
    expect(extractor.requests.map((request) => request.messages[0]?.content.slice(0, 1))).toEqual([
      '0',
      '1',
      '2',
      'y',
    ]);
    expect(extractor.requests[0]?.messages[0]?.content).toHaveLength(601);
    expect((await store.get('s'))?.version).toBe(4);
  });

  it('a turn longer than the budget is read in parts, each from the one before, and saved once', async () => {
    const extractor = createScriptedExtractor({
      fallback: (request) => ({
        summary: [
          request.previous?.summary ?? '',
          request.messages.map((message) => `${message.role}:${message.content.length}`).join('+'),
        ]
          .filter(Boolean)
          .join(' / '),
      }),
    });
    const events: SessionContextEvent[] = [];
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor,
      config: { fold: { maxInputChars: 1_000 }, onEvent: (event) => events.push(event) },
    });
    const result = await store.update({
      sessionId: 's',
      messages: [user('u'.repeat(700)), assistant('a'.repeat(2_500)), user('v'.repeat(400))],
    });
    // 700 alone (the next message is too long to join it), the 2,500 in three labelled pieces,
    // then 400: five extractions, every request within the budget.
    expect(extractor.requests).toHaveLength(5);
    for (const request of extractor.requests) {
      expect(request.messages.reduce((n, m) => n + m.content.length, 0)).toBeLessThanOrEqual(1_000);
    }
    const pieces = extractor.requests
      .slice(1, 4)
      .map((request) => request.messages[0]?.content ?? '');
    expect(
      pieces.map((piece) => piece.replace(/^\[part \d of 3 of one long message\] /, '')).join(''),
    ).toBe('a'.repeat(2_500));
    // Each part started from what the parts before it made.
    expect(extractor.requests[4]?.previous?.summary.split(' / ')).toHaveLength(4);
    expect(result.context?.version).toBe(1);
    expect(result.context?.summary.split(' / ')).toHaveLength(5);
    expect(events.filter((event) => event.type === 'updated')).toHaveLength(1);
    expect(await store.pendingTurns('s')).toEqual([]);
  });

  it('a part that fails leaves the whole long turn pending; the retry reads it again from the start', async () => {
    let calls = 0;
    const extractor = createScriptedExtractor({
      fallback: (request) => {
        calls += 1;
        if (calls === 2) throw new ExtractionError('server_error', 'the provider failed');
        return { summary: `${request.previous?.summary ?? ''}#` };
      },
    });
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor,
      config: { fold: { maxInputChars: 1_000 } },
    });
    const input = { sessionId: 's', turnId: 'long-1', messages: [user('x'.repeat(2_500))] };
    expect(await codeOf(store.update(input))).toBe('EXTRACTION_FAILED');
    expect(await store.get('s')).toBeNull();
    expect((await store.pendingTurns('s')).map((turn) => turn.turnId)).toEqual(['long-1']);
    const retried = await store.update(input);
    expect(retried.context).toMatchObject({ version: 1, summary: '###' });
  });

  describe('discardPendingTurns: a turn the model can never fold no longer stalls its session', () => {
    // A model that refuses any turn mentioning "poison", and folds the others.
    const picky = () =>
      createScriptedExtractor({
        fallback: (request) => {
          if (request.messages.some((message) => message.content.includes('poison'))) {
            throw new ExtractionError('refusal', 'The model refused to answer');
          }
          return {
            summary: [request.previous?.summary, ...request.messages.map((m) => m.content)]
              .filter(Boolean)
              .join(' | '),
          };
        },
      });

    it('every fold fails while the turn is pending; discarded, the next turns fold again', async () => {
      const events: SessionContextEvent[] = [];
      const repository = createMemoryRepository();
      const store = new SessionContextStore({
        repository,
        extractor: picky(),
        config: { onEvent: (event) => events.push(event) },
      });
      await store.update({ sessionId: 's', userId: 'ada', messages: [user('hello')] });
      await expect(
        store.update({ sessionId: 's', userId: 'ada', turnId: 'bad', messages: [user('poison')] }),
      ).rejects.toMatchObject({ code: 'EXTRACTION_FAILED', reason: 'refusal' });
      // Stalled: a later turn is folded after the refused one, and fails with it.
      await expect(
        store.update({ sessionId: 's', userId: 'ada', turnId: 'next', messages: [user('fine')] }),
      ).rejects.toMatchObject({ reason: 'refusal' });
      expect((await store.pendingTurns('s')).map((turn) => turn.turnId)).toEqual(['bad', 'next']);
      // The failed events name the turns each failed extraction was folding: 'bad' in both.
      expect(events.flatMap((event) => (event.type === 'failed' ? [event.turnIds] : []))).toEqual([
        ['bad'],
        ['bad', 'next'],
      ]);

      const discarded = await store.discardPendingTurns('s', ['bad', 'unknown'], {
        userId: 'ada',
      });
      expect(discarded.map((turn) => [turn.turnId, turn.messages])).toEqual([
        ['bad', [user('poison')]],
      ]);
      expect(events.filter((event) => event.type === 'turns-discarded')).toHaveLength(1);
      // The snapshot moved one version with its content as it was; the log keeps the other turn.
      expect(await repository.get('s')).toMatchObject({ version: 2, summary: 'hello' });
      expect((await store.pendingTurns('s')).map((turn) => turn.turnId)).toEqual(['next']);

      const result = await store.update({
        sessionId: 's',
        userId: 'ada',
        messages: [user('more')],
      });
      expect(result.context).toMatchObject({ version: 3, summary: 'hello | fine | more' });
      // A discarded id is gone for good: nothing left to discard.
      expect(await store.discardPendingTurns('s', ['bad'])).toEqual([]);
    });

    it('unblocks a session whose very first turn is refused', async () => {
      const store = new SessionContextStore({
        repository: createMemoryRepository(),
        extractor: picky(),
      });
      const { turnId } = await store.schedule({
        sessionId: 'n',
        userId: 'bo',
        messages: [user('poison')],
      });
      await store.flush();
      expect(await store.get('n')).toBeNull();
      expect(await store.discardPendingTurns('n', [turnId])).toHaveLength(1);
      expect(await store.get('n')).toMatchObject({ userId: 'bo', summary: '', version: 1 });
      expect(
        (await store.update({ sessionId: 'n', userId: 'bo', messages: [user('ok')] })).context,
      ).toMatchObject({ summary: 'ok', version: 2 });
    });

    it("refuses another user's session, and bad ids with INVALID_INPUT", async () => {
      const store = new SessionContextStore({
        repository: createMemoryRepository(),
        extractor: picky(),
      });
      await store.update({ sessionId: 's', userId: 'ada', messages: [user('hello')] });
      const { turnId } = await store.schedule(
        { sessionId: 's', userId: 'ada', messages: [user('poison')] },
        { foldDelayMs: 60_000 },
      );
      expect(await codeOf(store.discardPendingTurns('s', [turnId], { userId: 'eve' }))).toBe(
        'OWNERSHIP_MISMATCH',
      );
      expect(await codeOf(store.discardPendingTurns('s', []))).toBe('INVALID_INPUT');
      expect(await codeOf(store.discardPendingTurns('s', [''] as string[]))).toBe('INVALID_INPUT');
      expect(await codeOf(store.discardPendingTurns('', [turnId]))).toBe('INVALID_INPUT');
      expect((await store.pendingTurns('s')).map((turn) => turn.turnId)).toEqual([turnId]);
      await store.discardPendingTurns('s', [turnId]);
      await store.close();
    });
  });

  it('a delete drops pending turns of the session instead of folding them', async () => {
    const repository = createMemoryRepository();
    const store = new SessionContextStore({
      repository,
      extractor: createScriptedExtractor({ fallback: { summary: 'S' }, delayMs: 30 }),
    });
    await store.schedule({ sessionId: 's', messages: [user('one')] });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await store.schedule({ sessionId: 's', messages: [user('two')] });
    await store.schedule({ sessionId: 't', messages: [user('other session')] });
    await store.delete('s');
    await store.flush();
    expect(await store.pendingTurns('s')).toEqual([]);
    expect((await repository.get('t'))?.version).toBe(1);
  });

  it("refuses a turn for another user's session before recording it", async () => {
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({ fallback: { summary: 'S' } }),
    });
    await store.update({ sessionId: 's', userId: 'alice', messages: [user('x')] });
    expect(
      await codeOf(store.schedule({ sessionId: 's', userId: 'mallory', messages: [user('y')] })),
    ).toBe('OWNERSHIP_MISMATCH');
    expect(await store.pendingTurns('s')).toEqual([]);
  });

  it('lets go, with an event, turns of a user who lost the session before they were folded', async () => {
    const events: SessionContextEvent[] = [];
    const repository = createMemoryRepository();
    const extractor = createScriptedExtractor({
      fallback: (request) => ({ summary: request.messages.map((m) => m.content).join(' ') }),
    });
    const store = new SessionContextStore({
      repository,
      extractor,
      config: { onEvent: (event) => events.push(event) },
    });
    // Two turns are pending: Alice's creates the session, Bob's can never be applied to it.
    await repository.recordTurn?.('s', { turnId: 'a', userId: 'alice', messages: [user('alice')] });
    await repository.recordTurn?.('s', {
      turnId: 'b',
      userId: 'bob',
      messages: [user('bob secret')],
    });
    expect(await store.drain()).toEqual({ sessions: 1, turns: 2 });
    expect((await store.get('s'))?.summary).toBe('alice');
    expect(extractor.requests.flatMap((request) => request.messages.map((m) => m.content))).toEqual(
      ['alice'],
    );
    expect(events).toContainEqual({
      type: 'messages-dropped',
      sessionId: 's',
      count: 1,
      reason: 'rejected',
    });
  });

  it('drain folds what a crashed instance recorded and never folded, exactly once', async () => {
    const repository = createMemoryRepository();
    // A process recorded two turns and died before folding them; it still held a's lease.
    await repository.recordTurn?.('a', { turnId: 'a1', userId: null, messages: [user('one')] });
    await repository.recordTurn?.('b', { turnId: 'b1', userId: null, messages: [user('two')] });
    await repository.acquireLease?.('a', { holder: 'dead-process', ttlMs: 100 });
    const extractor = createScriptedExtractor({
      fallback: (request) => ({ summary: request.messages.map((m) => m.content).join(' ') }),
    });
    const survivor = new SessionContextStore({ repository, extractor });
    expect(await survivor.drain()).toEqual({ sessions: 1, turns: 1 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await survivor.drain()).toEqual({ sessions: 1, turns: 1 });
    expect(await survivor.drain()).toEqual({ sessions: 0, turns: 0 });
    expect((await survivor.get('a'))?.summary).toBe('one');
    expect((await survivor.get('b'))?.summary).toBe('two');
    expect(extractor.requests).toHaveLength(2);
  });

  it('drain leaves turns younger than olderThanMs to their own instance', async () => {
    const repository = createMemoryRepository();
    await repository.recordTurn?.('c', { turnId: 'c1', userId: null, messages: [user('fresh')] });
    const store = new SessionContextStore({
      repository,
      extractor: createScriptedExtractor({ fallback: { summary: 'S' } }),
    });
    expect(await store.drain({ olderThanMs: 60_000 })).toEqual({ sessions: 0, turns: 0 });
    expect(await store.drain({ olderThanMs: 0 })).toEqual({ sessions: 1, turns: 1 });
  });

  it('drain waits out a growing delay before trying a session whose fold failed again', async () => {
    const repository = createMemoryRepository();
    await repository.recordTurn?.('poison', { turnId: 'p1', userId: null, messages: [user('x')] });
    const extractor = createScriptedExtractor({
      fallback: new ExtractionError('refusal', 'the model refuses'),
    });
    const events: SessionContextEvent[] = [];
    const store = new SessionContextStore({
      repository,
      extractor,
      config: {
        background: { initialDelayMs: 100, maxDelayMs: 1_000 },
        onEvent: (event) => events.push(event),
      },
    });
    await store.drain();
    await store.drain();
    expect(extractor.requests).toHaveLength(1);
    expect(events.filter((event) => event.type === 'failed')).toMatchObject([
      { sessionId: 'poison', attempt: 1, willRetry: true, retryInMs: 100 },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 120));
    await store.drain();
    expect(extractor.requests).toHaveLength(2);
    expect(events.filter((event) => event.type === 'failed').at(-1)).toMatchObject({
      attempt: 2,
      retryInMs: 200,
    });
    expect(await store.pendingTurns('poison')).toHaveLength(1);
  });

  it('close flushes, then refuses every call', async () => {
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({ fallback: { summary: 'S' }, delayMs: 20 }),
    });
    await store.schedule({ sessionId: 's', messages: [user('hi')] });
    await store.close();
    await store.close();
    expect(await codeOf(store.get('s'))).toBe('CLOSED');
    expect(await codeOf(store.schedule({ sessionId: 's', messages: [user('x')] }))).toBe('CLOSED');
    expect(await codeOf(store.update({ sessionId: 's', messages: [user('x')] }))).toBe('CLOSED');
    expect(await codeOf(store.drain())).toBe('CLOSED');
  });
});

describe('configuration and input validation', () => {
  const base = { repository: createMemoryRepository(), extractor: createScriptedExtractor() };

  it.each([
    [{ enablePlanning: 'yes' }, /enablePlanning/],
    [{ mode: 'sometimes' }, /mode/],
    [{ maxConflictRetries: -1 }, /maxConflictRetries/],
    [{ render: { maxChars: 5 } }, /maxChars/],
    [{ background: { initialDelayMs: 100, maxDelayMs: 10 } }, /maxDelayMs/],
    [{ unknownOption: true }, /unknownOption|Unrecognized/i],
  ])('rejects %j', (config, message) => {
    let error: unknown;
    try {
      new SessionContextStore({ ...base, config: config as never });
    } catch (caught) {
      error = caught;
    }
    expect((error as ContextError).code).toBe('INVALID_CONFIG');
    expect((error as Error).message).toMatch(message);
  });

  it('rejects a missing repository or extractor', () => {
    expect(() => new SessionContextStore({ ...base, repository: undefined as never })).toThrow(
      /repository/,
    );
    expect(() => new SessionContextStore({ ...base, extractor: {} as never })).toThrow(/extractor/);
  });

  it('rejects bad input with INVALID_INPUT and a message that says what is wrong', async () => {
    const store = new SessionContextStore(base);
    const error = await store
      .update({ sessionId: 'a\nb', messages: [{ role: 'robot', content: 1 } as never] })
      .then(
        () => {
          throw new Error('expected a rejection');
        },
        (caught: unknown) => caught as ContextError,
      );
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/sessionId/);
    expect(error.message).toMatch(/messages\.0\.role/);
    expect(await codeOf(store.get('x'.repeat(257)))).toBe('INVALID_INPUT');
  });
});

describe('prompt helpers', () => {
  it('builds the next system prompt and prints a session', async () => {
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({ fallback: { summary: 'Working on X.' } }),
      config: { render: { maxChars: 64 } },
    });
    expect(await store.buildSystemPrompt('s', 'Base.')).toBe('Base.');
    await store.update({ sessionId: 's', userId: 'u', messages: [user('x')] });
    expect(await store.buildSystemPrompt('s', 'Base.')).toBe(
      'Base.\n\n<session_context>\nSummary: Working on X.\n</session_context>',
    );
    expect(await codeOf(store.render('s', { maxChars: 3 }))).toBe('INVALID_INPUT');
    const lines: string[] = [];
    const printed = await store.print('s', { log: (text) => lines.push(text) });
    expect(lines).toEqual([printed]);
    expect(printed).toContain('Session s (user u)');
    expect(printed).toContain('Working on X.');
  });
});
