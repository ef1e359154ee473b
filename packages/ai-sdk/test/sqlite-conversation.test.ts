// Needs better-sqlite3's native binding, built for the workspace's Node 20: `pnpm test:newest`
// (Node 24) leaves this file out, and runs the same conversation on the memory repository
// (conversation.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteRepository } from '@ctx/store-sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { runTwoTurnConversation, SYSTEM } from './helpers/conversation.js';

const directory = mkdtempSync(join(tmpdir(), 'ctx-ai-sdk-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe('a two-turn streamText conversation on SQLite', () => {
  it('puts turn 1’s context in turn 2’s system prompt and stores version 2', async () => {
    const filename = join(directory, 'chat.db');
    const sessionId = `trip-${crypto.randomUUID()}`;
    const repository = createSqliteRepository({ filename });
    const { systemPrompts, blockAfterTurn1, snapshot } = await runTwoTurnConversation(
      repository,
      sessionId,
    );
    await repository.close();

    expect(systemPrompts[0]).toBe(SYSTEM);
    expect(blockAfterTurn1).toMatch(/^<session_context>\nSummary: .*Lisbon/s);
    expect(systemPrompts[1]).toBe(`${SYSTEM}\n\n${blockAfterTurn1}`);
    expect(snapshot).toMatchObject({ sessionId, userId: 'alice', version: 2 });
    expect(snapshot?.summary).toMatch(/castle|tram/);

    // What is in the file, read by a new connection.
    const reopened = createSqliteRepository({ filename });
    expect(await reopened.get(sessionId)).toMatchObject({ version: 2, summary: snapshot?.summary });
    await reopened.close();
  });
});
