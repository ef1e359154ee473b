import {
  assertValidSnapshot,
  ContextError,
  type ContextExtractor,
  type ContextRepository,
  SessionContextStore,
} from '@ctx/core';
import { expect } from 'vitest';

/**
 * The deterministic extractor of the load tests: the next summary is the previous one plus the
 * folded turns' messages (unique marks), one per line (a fold may take several turns). A lost
 * turn is a missing line, a turn folded twice a duplicated one, and a torn write a line that is
 * not a mark.
 */
export function createMarkAppender(): ContextExtractor {
  return {
    async extract(request) {
      const marks = request.messages.map((message) => message.content);
      const previous = request.previous?.summary;
      return { draft: { summary: [previous, ...marks].filter(Boolean).join('\n') } };
    },
  };
}

interface Acknowledgement {
  sessionId: string;
  mark: string;
  version: number;
  /** Acknowledged after `Load.markPhase('after')` was called. */
  after: boolean;
}

interface Writer {
  name: string;
  acknowledged: number;
  acknowledgedAfter: number;
  errors: number;
}

/**
 * Writer loops running `update`s through SessionContextStore, one loop per (repository, session)
 * pair, each with its own store. Every turn writes a fresh mark; a turn that fails is never
 * retried with the same mark, so "present but not acknowledged" (a write whose reply was lost) is
 * possible and allowed, while "acknowledged but missing" is not.
 */
export class Load {
  readonly acknowledgements: Acknowledgement[] = [];
  readonly attempted = new Set<string>();
  /** Codes of the typed errors seen, with counts. */
  readonly errorCodes = new Map<string, number>();
  /** Anything thrown that is not a ContextError. */
  readonly foreignErrors: unknown[] = [];
  readonly writers: Writer[] = [];
  #running = true;
  #after = false;
  #loops: Promise<void>[] = [];

  readonly repositories: ContextRepository[];
  readonly sessionIds: string[];
  readonly userId: string;
  readonly #options: { pauseOnErrorMs: number; maxTurnsPerWriter: number };

  constructor(
    repositories: ContextRepository[],
    sessionIds: string[],
    userId: string,
    options: { pauseOnErrorMs: number; maxTurnsPerWriter: number },
  ) {
    this.repositories = repositories;
    this.sessionIds = sessionIds;
    this.userId = userId;
    this.#options = options;
  }

  start(): void {
    this.repositories.forEach((repository, repositoryIndex) => {
      for (const sessionId of this.sessionIds) {
        const store = new SessionContextStore({
          repository,
          extractor: createMarkAppender(),
          config: { maxConflictRetries: 50, extractionTimeoutMs: 10_000 },
        });
        const writer: Writer = {
          name: `r${repositoryIndex}-${sessionId}`,
          acknowledged: 0,
          acknowledgedAfter: 0,
          errors: 0,
        };
        this.writers.push(writer);
        this.#loops.push(this.#run(store, sessionId, writer));
      }
    });
  }

  async #run(store: SessionContextStore, sessionId: string, writer: Writer): Promise<void> {
    for (let turn = 0; this.#running && turn < this.#options.maxTurnsPerWriter; turn += 1) {
      const mark = `${writer.name}:${turn}`;
      this.attempted.add(mark);
      try {
        const result = await store.update({
          sessionId,
          userId: this.userId,
          messages: [{ role: 'user', content: mark }],
        });
        const after = this.#after;
        this.acknowledgements.push({
          sessionId,
          mark,
          version: result.context?.version ?? -1,
          after,
        });
        writer.acknowledged += 1;
        if (after) writer.acknowledgedAfter += 1;
      } catch (error) {
        writer.errors += 1;
        if (ContextError.isInstance(error)) {
          this.errorCodes.set(error.code, (this.errorCodes.get(error.code) ?? 0) + 1);
        } else {
          this.foreignErrors.push(error);
        }
        await new Promise((resolve) => setTimeout(resolve, this.#options.pauseOnErrorMs));
      }
    }
  }

  /** From now on, acknowledgements count as "after the outage". */
  markRecoveryPhase(): void {
    this.#after = true;
  }

  /** Resolves when `check` holds, polling; throws after `timeoutMs`. */
  async until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${this.describe()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  describe(): string {
    const writers = this.writers
      .map(
        (w) => `${w.name}: ${w.acknowledged} ok (${w.acknowledgedAfter} after), ${w.errors} errors`,
      )
      .join('; ');
    return `${writers}; error codes ${JSON.stringify(Object.fromEntries(this.errorCodes))}`;
  }

  /**
   * Every session's stored snapshot is valid and consistent: every line a mark some writer
   * attempted, no mark twice, at most one version per folded mark, and every acknowledged mark
   * present, in a version no later than the stored one. A mark that was recorded but whose update
   * failed may be present too (the turn stays in the log and a later fold takes it).
   */
  async verify(repository: ContextRepository): Promise<void> {
    expect(this.foreignErrors).toEqual([]);
    for (const sessionId of this.sessionIds) {
      const stored = await repository.get(sessionId);
      expect(stored, `session ${sessionId}`).not.toBeNull();
      assertValidSnapshot(stored);
      expect(stored?.userId).toBe(this.userId);
      const lines = stored?.summary.split('\n') ?? [];
      expect(
        stored?.version ?? 0,
        `at most one version per mark of ${sessionId}`,
      ).toBeLessThanOrEqual(lines.length);
      expect(new Set(lines).size, `no mark twice in ${sessionId}`).toBe(lines.length);
      for (const line of lines) expect(this.attempted.has(line), `unknown line ${line}`).toBe(true);
      const acknowledged = this.acknowledgements.filter((entry) => entry.sessionId === sessionId);
      for (const { mark, version } of acknowledged) {
        expect(lines, `acknowledged ${mark} as version ${version}`).toContain(mark);
        expect(version).toBeLessThanOrEqual(stored?.version ?? 0);
      }
    }
  }
}
