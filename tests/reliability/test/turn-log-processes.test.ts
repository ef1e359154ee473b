import { SessionContextStore } from '@ctx/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type Backend, type BackendName, openBackend, randomId } from './helpers/backends.js';
import { killWorkers, spawnWorker } from './helpers/processes.js';

// The turn log across a crash: a process records turns with schedule() and is killed with SIGKILL
// while its folds hang; another process's drain() folds every recorded turn exactly once.

const TURNS = 12;
const LEASE_TTL_MS = 600;
const BACKENDS: BackendName[] = ['sqlite', 'postgres', 'redis', 'mysql'];

afterAll(killWorkers);

describe.each(BACKENDS)('%s: turns recorded by a killed process', (name) => {
  let backend: Backend | undefined;
  afterAll(async () => {
    await backend?.dispose();
  });

  it(`SIGKILL after ${TURNS} schedule() calls resolved: a drain elsewhere folds each turn exactly once`, async () => {
    backend = await openBackend(name);
    const sessionId = randomId('crash');
    const userId = randomId('user');
    const victim = spawnWorker<unknown>('identity-worker.mjs', {
      connection: backend.connection,
      mode: 'crash',
      sessionId,
      userId,
      rounds: TURNS,
      leaseTtlMs: LEASE_TTL_MS,
    });
    await victim.printed('ready');
    victim.send('go');
    await victim.printed('recorded');
    victim.kill();
    await victim.done;

    let extractions = 0;
    const store = new SessionContextStore({
      repository: backend.repository,
      extractor: {
        async extract(request) {
          extractions += 1;
          const lines = request.messages.map((message) => message.content);
          return {
            draft: {
              summary: [request.previous?.summary ?? '', ...lines].filter(Boolean).join('\n'),
            },
          };
        },
      },
    });
    expect((await store.pendingTurns(sessionId)).length).toBe(TURNS);
    // The dead process may still hold the lease: it lapses within its TTL.
    let folded = 0;
    const deadline = Date.now() + 10_000;
    while (folded < TURNS && Date.now() < deadline) {
      folded += (await store.drain()).turns;
      if (folded < TURNS) await new Promise((resolve) => setTimeout(resolve, LEASE_TTL_MS / 3));
    }
    expect(folded).toBe(TURNS);
    expect(await store.drain()).toEqual({ sessions: 0, turns: 0 });
    const context = await store.get(sessionId, { userId });
    const lines = context?.summary.split('\n') ?? [];
    expect(lines).toEqual(Array.from({ length: TURNS }, (_, round) => `${userId} ${round}`));
    expect(extractions).toBeLessThanOrEqual(TURNS);
    // A retry of a turn the dead process recorded is a no-op.
    const again = await store.update({
      sessionId,
      userId,
      turnId: `${userId}-3`,
      messages: [{ role: 'user', content: `${userId} 3` }],
    });
    expect(again.context?.summary).toBe(context?.summary);
  });
});
