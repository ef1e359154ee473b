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
  it('50 concurrent updates through two stores on one repository lose nothing', async () => {
    const repository = createMemoryRepository();
    let conflicts = 0;
    const extractor = createScriptedExtractor({
      fallback: async (request) => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
        const mark = request.messages[0]?.content ?? '?';
        return { summary: `${request.previous?.summary ?? ''}|${mark}` };
      },
    });
    const config = {
      maxConflictRetries: 50,
      onEvent: (event: SessionContextEvent) => {
        if (event.type === 'conflict-retried') conflicts += 1;
      },
    };
    const stores = [
      new SessionContextStore({ repository, extractor, config }),
      new SessionContextStore({ repository, extractor, config }),
    ];
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, index) =>
        (stores[index % 2] as SessionContextStore).update({
          sessionId: 'shared',
          messages: [user(`m${index}`)],
        }),
      ),
    );
    const succeeded = results.flatMap((result, index) =>
      result.status === 'fulfilled' ? [index] : [],
    );
    for (const result of results) {
      if (result.status === 'rejected') {
        expect((result.reason as ContextError).code).toBe('VERSION_CONFLICT');
      }
    }
    const final = (await repository.get('shared')) as SessionContext;
    expect(final.version).toBe(succeeded.length);
    const marks = final.summary.split('|').filter(Boolean);
    expect(marks).toHaveLength(succeeded.length);
    expect(new Set(marks)).toEqual(new Set(succeeded.map((index) => `m${index}`)));
    expect(succeeded.length).toBe(50);
    expect(conflicts).toBeGreaterThan(0);
  });

  it('serializes updates of one session inside a store', async () => {
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
          return { summary: `${request.previous?.summary ?? ''}+` };
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

describe('background mode', () => {
  it('returns before the update runs; flush waits for it', async () => {
    const repository = createMemoryRepository();
    const store = new SessionContextStore({
      repository,
      extractor: createScriptedExtractor({ fallback: { summary: 'S' }, delayMs: 30 }),
    });
    store.schedule({ sessionId: 's', messages: [user('hi')] });
    expect(await repository.get('s')).toBeNull();
    await store.flush();
    expect((await repository.get('s'))?.summary).toBe('S');
  });

  it('rejects invalid input synchronously', () => {
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor(),
    });
    expect(() => store.schedule({ sessionId: '', messages: [] })).toThrow(/sessionId/);
  });

  it('merges turns scheduled while an update runs into one extraction', async () => {
    const extractor = createScriptedExtractor({
      fallback: (request) => ({
        summary: `${request.previous?.summary ?? ''}[${request.messages.map((m) => m.content).join(',')}]`,
      }),
      delayMs: 20,
    });
    const store = new SessionContextStore({ repository: createMemoryRepository(), extractor });
    store.schedule({ sessionId: 's', messages: [user('1')] });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(extractor.requests).toHaveLength(1);
    store.schedule({ sessionId: 's', messages: [user('2')] });
    store.schedule({ sessionId: 's', messages: [user('3')] });
    await store.flush();
    expect(extractor.requests).toHaveLength(2);
    expect((await store.get('s'))?.summary).toBe('[1][2,3]');
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
    store.schedule({ sessionId: 's', messages: [user('hi')] });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await store.flush();
    expect((await store.get('s'))?.summary).toBe('Recovered.');
    const failed = events.filter((event) => event.type === 'failed');
    expect(failed).toMatchObject([
      { attempt: 1, willRetry: true, retryInMs: 40 },
      { attempt: 2, willRetry: true, retryInMs: 10 },
    ]);
    expect(events.at(-1)).toMatchObject({ type: 'updated', background: true });
  });

  it('carries the messages of a finally failed update into the next update', async () => {
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
    store.schedule({ sessionId: 's', messages: [user('turn one'), assistant('reply one')] });
    await store.flush();
    expect(await store.get('s')).toBeNull();
    expect(store.carriedMessages().get('s')).toBe(2);
    expect(events.filter((event) => event.type === 'failed').at(-1)).toMatchObject({
      willRetry: false,
      carriedMessages: 2,
    });
    const result = await store.update({ sessionId: 's', messages: [user('turn two')] });
    expect(result.context?.summary).toBe('turn one reply one turn two');
    expect(store.carriedMessages().size).toBe(0);
  });

  it('does not hold the session while a background update waits to retry', async () => {
    const extractor = createScriptedExtractor({
      replies: [new ExtractionError('server_error', 'down')],
      fallback: (request) => ({ summary: request.messages.map((m) => m.content).join(' ') }),
    });
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor,
      config: { background: { initialDelayMs: 60_000, maxDelayMs: 60_000 }, onEvent: () => {} },
    });
    store.schedule({ sessionId: 's', messages: [user('queued turn')] });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(store.carriedMessages().get('s')).toBe(1);
    const started = Date.now();
    const result = await store.update({ sessionId: 's', messages: [user('direct turn')] });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result.context?.summary).toBe('queued turn direct turn');
    await store.flush();
    expect(extractor.requests).toHaveLength(2);
    expect((await store.get('s'))?.version).toBe(1);
  });

  it('a delete drops scheduled turns of the session instead of writing them back', async () => {
    const repository = createMemoryRepository();
    const store = new SessionContextStore({
      repository,
      extractor: createScriptedExtractor({ fallback: { summary: 'S' }, delayMs: 30 }),
    });
    store.schedule({ sessionId: 's', messages: [user('one')] });
    await new Promise((resolve) => setTimeout(resolve, 5));
    store.schedule({ sessionId: 's', messages: [user('two')] });
    store.schedule({ sessionId: 't', messages: [user('other session')] });
    expect(await store.delete('s')).toBe(true);
    await store.flush();
    expect(await repository.get('s')).toBeNull();
    expect((await repository.get('t'))?.version).toBe(1);
  });

  it("never carries one user's messages into another user's update", async () => {
    const extractor = createScriptedExtractor({
      replies: [new ExtractionError('server_error', 'down')],
      fallback: (request) => ({ summary: request.messages.map((m) => m.content).join(' ') }),
    });
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor,
      config: { background: { maxAttempts: 1 }, onEvent: () => {} },
    });
    store.schedule({ sessionId: 's', userId: 'bob', messages: [user('bob secret')] });
    await store.flush();
    expect(store.carriedMessages().get('s')).toBe(1);
    const alice = await store.update({
      sessionId: 's',
      userId: 'alice',
      messages: [user('hello')],
    });
    expect(alice.context?.summary).toBe('hello');
    expect(store.carriedMessages().get('s')).toBe(1);
    // Bob can never write to Alice's session: his next attempt is refused and his turns let go.
    expect(
      await codeOf(store.update({ sessionId: 's', userId: 'bob', messages: [user('x')] })),
    ).toBe('OWNERSHIP_MISMATCH');
    expect(store.carriedMessages().has('s')).toBe(false);
  });

  it('bounds carried messages, dropping the oldest with an event', async () => {
    const events: SessionContextEvent[] = [];
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({
        fallback: new ExtractionError('server_error', 'down'),
      }),
      config: {
        background: { maxAttempts: 1, maxCarriedMessages: 3 },
        onEvent: (event) => events.push(event),
      },
    });
    store.schedule({ sessionId: 's', messages: [user('a'), user('b')] });
    await store.flush();
    store.schedule({ sessionId: 's', messages: [user('c'), user('d')] });
    await store.flush();
    expect(store.carriedMessages().get('s')).toBe(3);
    expect(events).toContainEqual({
      type: 'messages-dropped',
      sessionId: 's',
      count: 1,
      reason: 'carry-limit',
    });
  });

  it('drops, with an event, turns refused for ownership', async () => {
    const events: SessionContextEvent[] = [];
    const store = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: createScriptedExtractor({ fallback: { summary: 'S' } }),
      config: { onEvent: (event) => events.push(event) },
    });
    await store.update({ sessionId: 's', userId: 'alice', messages: [user('x')] });
    store.schedule({ sessionId: 's', userId: 'mallory', messages: [user('y')] });
    await store.flush();
    expect(store.carriedMessages().size).toBe(0);
    expect(events.at(-1)).toEqual({
      type: 'messages-dropped',
      sessionId: 's',
      count: 1,
      reason: 'rejected',
    });
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
