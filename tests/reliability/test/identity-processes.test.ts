import { makeSnapshot } from '@ctx/conformance';
import { SessionContextStore } from '@ctx/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type Backend, type BackendName, openBackend, randomId } from './helpers/backends.js';
import { killWorkers, spawnWorker } from './helpers/processes.js';

// Contracts v2 across OS processes, each with its own SessionContextStore and connection:
// a stale update cannot write into a session deleted and re-created meanwhile, and an impostor's
// delete racing the owner's delete and re-create never deletes.

interface IdentityReport {
  mode: string;
  deletes: Array<boolean | string>;
  versions: number[];
  outcome: { written?: boolean; version?: number; typed?: boolean; code?: string } | null;
  errors: Array<{ typed: boolean; code?: string; message: string }>;
}

const OWNER_ROUNDS = 60;
const PROCESS_BACKENDS: BackendName[] = ['sqlite', 'postgres', 'redis', 'mysql'];

afterAll(killWorkers);

const echo = {
  async extract(request: { messages: Array<{ content: string }> }) {
    return { draft: { summary: request.messages.map((message) => message.content).join('\n') } };
  },
};

describe.each(PROCESS_BACKENDS)('%s: session identity across OS processes', (name) => {
  let backend: Backend | undefined;
  afterAll(async () => {
    await backend?.dispose();
  });

  it('a held update in another process fails typed after a delete + re-create, and the new owner keeps the session', async () => {
    backend = await openBackend(name);
    const store = new SessionContextStore({ repository: backend.repository, extractor: echo });
    const sessionId = randomId('held');
    const alice = randomId('alice');
    const bob = randomId('bob');
    await store.update({
      sessionId,
      userId: alice,
      messages: [{ role: 'user', content: 'Alice v1' }],
    });

    const held = spawnWorker<IdentityReport>('identity-worker.mjs', {
      connection: backend.connection,
      mode: 'held',
      sessionId,
      userId: alice,
    });
    await held.printed('ready');
    held.send('go');
    await held.printed('extracting');
    // Between the held update's read and its write: Alice's session goes, Bob's arrives (as
    // another instance's fold writes it: the held process holds the session's lease).
    expect(await store.delete(sessionId, { userId: alice })).toBe(true);
    const bobs = await backend.repository.save(
      makeSnapshot({ sessionId, userId: bob, summary: "Bob's session" }),
      { expectedVersion: null },
    );
    held.send('continue');
    const { exitCode, report, stderr } = await held.done;
    expect(exitCode, stderr).toBe(0);
    expect(report?.errors, stderr).toEqual([]);
    expect(report?.outcome).toMatchObject({ typed: true, code: 'OWNERSHIP_MISMATCH' });
    const stored = await store.get(sessionId, { userId: bob });
    expect(stored?.userId).toBe(bob);
    expect(stored?.summary).toBe("Bob's session");
    expect(stored?.version).toBe(bobs.version);
  });

  it(`an impostor process deleting while the owner deletes and re-creates ${OWNER_ROUNDS} times never deletes`, async () => {
    backend ??= await openBackend(name);
    const store = new SessionContextStore({ repository: backend.repository, extractor: echo });
    const sessionId = randomId('impostor');
    const alice = randomId('alice');
    await store.update({
      sessionId,
      userId: alice,
      messages: [{ role: 'user', content: 'start' }],
    });

    const owner = spawnWorker<IdentityReport>('identity-worker.mjs', {
      connection: backend.connection,
      mode: 'owner',
      sessionId,
      userId: alice,
      rounds: OWNER_ROUNDS,
    });
    const impostor = spawnWorker<IdentityReport>('identity-worker.mjs', {
      connection: backend.connection,
      mode: 'impostor',
      sessionId,
      userId: randomId('bob'),
    });
    await Promise.all([owner.printed('ready'), impostor.printed('ready')]);
    impostor.send('go');
    owner.send('go');
    const ownerResult = await owner.done;
    impostor.send('stop');
    const impostorResult = await impostor.done;

    expect(ownerResult.report?.errors, ownerResult.stderr).toEqual([]);
    expect(impostorResult.report?.errors, impostorResult.stderr).toEqual([]);
    // Every one of the owner's deletes found its own session: nobody else removed it.
    expect(ownerResult.report?.deletes).toEqual(Array(OWNER_ROUNDS).fill(true));
    const attempts = impostorResult.report?.deletes ?? [];
    expect(attempts.length).toBeGreaterThan(0);
    expect(attempts.filter((attempt) => attempt === true)).toEqual([]);
    for (const attempt of attempts) expect([false, 'OWNERSHIP_MISMATCH']).toContain(attempt);
    const stored = await store.get(sessionId, { userId: alice });
    expect(stored?.summary).toBe(`${alice} round ${OWNER_ROUNDS - 1}`);
    // Versions kept counting across every delete and re-create.
    const versions = ownerResult.report?.versions ?? [];
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(OWNER_ROUNDS);
  });
});
