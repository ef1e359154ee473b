import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SessionContextStore } from '@ctx/core';
import { createScriptedExtractor, type ScriptedExtractor } from '@ctx/core/testing';
import { createSqliteRepository, type SqliteRepository } from '@ctx/store-sqlite';
import type { BaseMessage } from '@langchain/core/messages';

export interface TestStore {
  store: SessionContextStore;
  extractor: ScriptedExtractor;
  repository: SqliteRepository;
  filename: string;
  close(): Promise<void>;
}

/**
 * A store on a real SQLite file whose extractor writes a summary that names every user message it
 * was given, so a test can see which turns reached the snapshot.
 */
export function openTestStore(): TestStore {
  const directory = mkdtempSync(join(tmpdir(), 'ctx-langchain-'));
  const filename = join(directory, 'ctx.db');
  const repository = createSqliteRepository({ filename });
  const extractor = createScriptedExtractor({
    fallback: (request) => {
      const asked = request.messages
        .filter((message) => message.role === 'user')
        .map((message) => message.content);
      return {
        summary: [request.previous?.summary, `User asked: ${asked.join(' / ')}.`]
          .filter(Boolean)
          .join(' '),
      };
    },
  });
  const store = new SessionContextStore({ repository, extractor });
  return {
    store,
    extractor,
    repository,
    filename,
    async close() {
      await store.close();
      await repository.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** The text of the system message a fake model received (or '' when it got none). */
export function systemText(messages: BaseMessage[]): string {
  const system = messages.find((message) => message.type === 'system');
  return system?.text ?? '';
}

export const randomId = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2)}`;
