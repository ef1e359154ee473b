import {
  ContextError,
  createMemoryRepository,
  ExtractionError,
  type SessionContext,
  type SessionContextEvent,
  SessionContextStore,
} from '@ctx/core';
import { createScriptedExtractor, type ScriptedExtractor } from '@ctx/core/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS, type Backend, openBackend, randomId } from './helpers/backends.js';

// Tenant isolation through the store API: with `userId` set, another user's session can never be
// read, rendered, injected, updated (directly or in the background), deleted or listed. Every
// refused call leaves the owner's snapshot exactly as it was and never reaches the model.

const ALICE = 'alice';
// Users that are not alice, however close they look.
const IMPOSTORS = [
  'bob',
  'Alice',
  'ALICE',
  'alice ',
  ' alice',
  'alice\u200b',
  'alicе' /* Cyrillic е */,
];

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to be refused, but it succeeded');
}

function expectOwnershipError(error: unknown, label: string): void {
  expect(ContextError.isInstance(error), `${label}: ${String(error)}`).toBe(true);
  expect((error as ContextError).code, label).toBe('OWNERSHIP_MISMATCH');
}

function summaryOf(request: { messages: Array<{ content: string }> }, previous?: string) {
  const text = request.messages.map((message) => message.content).join(' | ');
  return { summary: previous ? `${previous} | ${text}` : text };
}

describe.each(BACKENDS)('%s: tenant isolation through SessionContextStore', (name) => {
  let backend: Backend;
  let extractor: ScriptedExtractor;
  let events: SessionContextEvent[];
  let store: SessionContextStore;
  let sessionId: string;
  let original: SessionContext;

  beforeAll(async () => {
    backend = await openBackend(name);
  });
  afterAll(async () => {
    await backend?.dispose();
  });

  beforeEach(async () => {
    events = [];
    extractor = createScriptedExtractor({
      fallback: (request) => summaryOf(request, request.previous?.summary),
    });
    store = new SessionContextStore({
      repository: backend.repository,
      extractor,
      config: {
        onEvent: (event) => events.push(event),
        background: { maxAttempts: 1, initialDelayMs: 0 },
      },
    });
    sessionId = randomId('tenant');
    const created = await store.update({
      sessionId,
      userId: ALICE,
      messages: [{ role: 'user', content: 'Alice: my account number is 4711.' }],
    });
    original = created.context as SessionContext;
    expect(original.userId).toBe(ALICE);
  });

  /** Alice's snapshot is exactly as she left it, and the model was asked nothing since. */
  async function expectUntouched(extractionsBefore = 1) {
    expect(await backend.repository.get(sessionId)).toEqual(original);
    expect(extractor.requests).toHaveLength(extractionsBefore);
  }

  it('get: another user cannot read the session', async () => {
    for (const userId of IMPOSTORS) {
      expectOwnershipError(await rejection(store.get(sessionId, { userId })), `get as ${userId}`);
    }
    expect(await store.get(sessionId, { userId: ALICE })).toEqual(original);
    await expectUntouched();
  });

  it('render: another user cannot render the block', async () => {
    for (const userId of IMPOSTORS) {
      expectOwnershipError(
        await rejection(store.render(sessionId, { userId })),
        `render as ${userId}`,
      );
    }
    expect(await store.render(sessionId, { userId: ALICE })).toContain('4711');
    await expectUntouched();
  });

  it('buildSystemPrompt: another user cannot get the block injected', async () => {
    for (const userId of IMPOSTORS) {
      expectOwnershipError(
        await rejection(store.buildSystemPrompt(sessionId, 'You are helpful.', { userId })),
        `buildSystemPrompt as ${userId}`,
      );
    }
    expect(await store.buildSystemPrompt(sessionId, 'Base.', { userId: ALICE })).toContain('4711');
    await expectUntouched();
  });

  it('print: another user cannot print the session', async () => {
    for (const userId of IMPOSTORS) {
      expectOwnershipError(
        await rejection(store.print(sessionId, { userId, log: () => undefined })),
        `print as ${userId}`,
      );
    }
    await expectUntouched();
  });

  it('update: another user cannot write the session, and the model never sees it', async () => {
    for (const userId of IMPOSTORS) {
      expectOwnershipError(
        await rejection(
          store.update({
            sessionId,
            userId,
            messages: [{ role: 'user', content: `${userId}: overwrite everything` }],
          }),
        ),
        `update as ${userId}`,
      );
    }
    await expectUntouched();
    const next = await store.update({
      sessionId,
      userId: ALICE,
      messages: [{ role: 'user', content: 'Alice: next step.' }],
    });
    expect(next.context?.version).toBe(2);
    // Nothing of the refused turns was carried into the owner's next update.
    expect(extractor.requests[1]?.messages).toEqual([
      { role: 'user', content: 'Alice: next step.' },
    ]);
  });

  it('schedule: another user’s turn is refused before it is recorded, and never extracted', async () => {
    for (const userId of IMPOSTORS) {
      expectOwnershipError(
        await rejection(
          store.schedule({
            sessionId,
            userId,
            messages: [{ role: 'user', content: `${userId}: overwrite in the background` }],
          }),
        ),
        `schedule as ${userId}`,
      );
    }
    await store.flush();
    await expectUntouched();
    expect(await store.pendingTurns(sessionId)).toEqual([]);
    const seen = extractor.requests.flatMap((request) => request.messages.map((m) => m.content));
    expect(seen.some((content) => content.includes('overwrite in the background'))).toBe(false);
  });

  it('schedule: an impostor’s turn between the owner’s turns is the only one not applied', async () => {
    await store.schedule({ sessionId, userId: ALICE, messages: [{ role: 'user', content: 'A1' }] });
    await store
      .schedule({ sessionId, userId: 'bob', messages: [{ role: 'user', content: 'B1' }] })
      .catch(() => undefined);
    await store.schedule({ sessionId, userId: ALICE, messages: [{ role: 'user', content: 'A2' }] });
    await store.flush();
    const stored = await store.get(sessionId, { userId: ALICE });
    expect(stored?.summary).toContain('A1');
    expect(stored?.summary).toContain('A2');
    expect(stored?.summary).not.toContain('B1');
    const seen = extractor.requests.flatMap((request) => request.messages.map((m) => m.content));
    expect(seen).not.toContain('B1');
  });

  it('delete: another user cannot delete the session', async () => {
    for (const userId of IMPOSTORS) {
      expectOwnershipError(
        await rejection(store.delete(sessionId, { userId })),
        `delete as ${userId}`,
      );
    }
    await expectUntouched();
    expect(await store.delete(sessionId, { userId: ALICE })).toBe(true);
    expect(await backend.repository.get(sessionId)).toBeNull();
  });

  it('list: a user’s pages never contain another user’s sessions', async () => {
    const bob = randomId('bob');
    const alice = randomId('alice');
    const owned = { [alice]: [] as string[], [bob]: [] as string[] };
    for (let index = 0; index < 5; index += 1) {
      for (const userId of [alice, bob]) {
        const id = randomId(`list-${index}`);
        owned[userId]?.push(id);
        await store.update({ sessionId: id, userId, messages: [{ role: 'user', content: 'hi' }] });
      }
    }
    await store.update({
      sessionId: randomId('anonymous'),
      messages: [{ role: 'user', content: 'no owner' }],
    });
    for (const userId of [alice, bob]) {
      const seen: SessionContext[] = [];
      let cursor: string | null = null;
      do {
        const page = await store.list({ userId, limit: 2, cursor });
        seen.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen.map((item) => item.userId)).toEqual(Array(5).fill(userId));
      expect(seen.map((item) => item.sessionId).sort()).toEqual([...(owned[userId] ?? [])].sort());
    }
    for (const userId of [alice.toUpperCase(), `${alice} `, `${alice}\u200b`]) {
      expect((await store.list({ userId })).items).toEqual([]);
    }
  });

  it('documented limit: without userId the caller is trusted', async () => {
    expect(await store.get(sessionId)).toEqual(original);
    expect(await store.render(sessionId)).toContain('4711');
  });

  it('documented limit: an anonymous session is readable by anyone and is not claimed by an update', async () => {
    const anonymous = randomId('anonymous');
    await store.update({ sessionId: anonymous, messages: [{ role: 'user', content: 'shared' }] });
    expect((await store.get(anonymous, { userId: 'bob' }))?.userId).toBeNull();
    const updated = await store.update({
      sessionId: anonymous,
      userId: 'bob',
      messages: [{ role: 'user', content: 'bob was here' }],
    });
    expect(updated.context?.userId).toBeNull();
    expect((await store.get(anonymous, { userId: 'carol' }))?.summary).toContain('bob was here');
  });
});

// The turn log decides who owns a new id: the first recorded turn. Turns of anyone else are let go
// at the fold, never applied: one store is enough to show it.
describe('SessionContextStore turn log: ownership of a new session id', () => {
  it('a failed turn of another user claims the id; this user is refused and never sees it', async () => {
    // Bob's background fold of a session id that does not exist yet fails (model outage); his
    // turn stays recorded. Alice then updates the same id.
    const shared = randomId('shared-id');
    const outage = createScriptedExtractor({
      replies: [new ExtractionError('server_error', 'model outage')],
      fallback: (request) => summaryOf(request, request.previous?.summary),
    });
    const events: SessionContextEvent[] = [];
    const background = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: outage,
      config: {
        background: { maxAttempts: 1, initialDelayMs: 0 },
        onEvent: (event) => events.push(event),
      },
    });
    await background.schedule({
      sessionId: shared,
      userId: 'bob',
      messages: [{ role: 'user', content: 'Bob: my password is hunter2.' }],
    });
    await background.flush();
    expectOwnershipError(
      await rejection(
        background.update({
          sessionId: shared,
          userId: ALICE,
          messages: [{ role: 'user', content: 'Alice: hello.' }],
        }),
      ),
      'Alice after Bob claimed the id',
    );
    const stored = await background.get(shared);
    expect(stored?.userId).toBe('bob');
    expect(stored?.summary).not.toContain('Alice');
    // Alice's words never reached the model, and were reported as let go.
    const seen = outage.requests.flatMap((request) => request.messages.map((m) => m.content));
    expect(seen).not.toContain('Alice: hello.');
    expect(events.some((event) => event.type === 'messages-dropped')).toBe(true);
  });

  it('the same through schedule: Alice’s background turn is let go, never applied to Bob’s session', async () => {
    const shared = randomId('shared-id');
    const outage = createScriptedExtractor({
      replies: [new ExtractionError('server_error', 'model outage')],
      fallback: (request) => summaryOf(request, request.previous?.summary),
    });
    const background = new SessionContextStore({
      repository: createMemoryRepository(),
      extractor: outage,
      config: { background: { maxAttempts: 1, initialDelayMs: 0 }, onEvent: () => undefined },
    });
    await background.schedule({
      sessionId: shared,
      userId: 'bob',
      messages: [{ role: 'user', content: 'Bob: my password is hunter2.' }],
    });
    await background.flush();
    await background.schedule({
      sessionId: shared,
      userId: ALICE,
      messages: [{ role: 'user', content: 'Alice: hello.' }],
    });
    await background.flush();
    expectOwnershipError(await rejection(background.get(shared, { userId: ALICE })), 'Alice reads');
    const stored = await background.get(shared);
    expect(stored?.userId).toBe('bob');
    expect(stored?.summary).not.toContain('Alice');
    expect(await background.pendingTurns(shared)).toEqual([]);
  });
});
