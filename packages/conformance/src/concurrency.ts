import { type ContextRepository, type SessionContext, VersionConflictError } from '@ctx/core';
import { makeSnapshot } from './random.js';

/** What happened when several writers raced to create (or update) one session. */
export interface WriteRaceOutcome {
  /** What each successful `save` returned. */
  winners: SessionContext[];
  /** The `VERSION_CONFLICT` errors of the writers that lost. */
  conflicts: VersionConflictError[];
  /** Anything else thrown (a conformant repository throws nothing else). */
  failures: unknown[];
}

/**
 * Starts `writes` saves of `snapshots(index)` at once, spread round-robin over `repositories`, all
 * with the same `expectedVersion`, and sorts the outcomes. Exactly one winner is what a
 * compare-and-set repository must produce.
 */
export async function raceWrites(
  repositories: ContextRepository[],
  writes: number,
  snapshot: (index: number) => SessionContext,
  expectedVersion: number | null,
): Promise<WriteRaceOutcome> {
  const settled = await Promise.allSettled(
    Array.from({ length: writes }, (_, index) => {
      const repository = repositories[index % repositories.length] as ContextRepository;
      return repository.save(snapshot(index), { expectedVersion });
    }),
  );
  const outcome: WriteRaceOutcome = { winners: [], conflicts: [], failures: [] };
  for (const result of settled) {
    if (result.status === 'fulfilled') outcome.winners.push(result.value);
    else if (VersionConflictError.isInstance(result.reason)) outcome.conflicts.push(result.reason);
    else outcome.failures.push(result.reason);
  }
  return outcome;
}

/** Options of {@link runReadModifyWriteLoops}. */
export interface ReadModifyWriteOptions {
  sessionId: string;
  userId?: string | null;
  /** Successful writes each writer makes. */
  writesPerWriter: number;
  /**
   * Attempts (successful or not) after which a writer gives up.
   * @default writesPerWriter * 50
   */
  maxAttemptsPerWriter?: number;
}

/** What {@link runReadModifyWriteLoops} observed. */
export interface ReadModifyWriteOutcome {
  /** Successful writes, per writer. */
  successes: number[];
  /** Version conflicts met (and retried) in all. */
  conflicts: number;
  /** Errors other than version conflicts (each stops its writer). */
  failures: unknown[];
  /** Every mark a successful write appended, in no particular order. */
  marks: string[];
  /** The session as stored at the end. */
  final: SessionContext | null;
  /** Marks of successful writes that the final summary lacks: lost updates. */
  missingMarks: string[];
}

/**
 * Runs one read-modify-write loop per repository, all at once, on one session: read, append a
 * unique mark to the summary, save with the version read, and on a version conflict read again and
 * retry. On a compare-and-set repository no update is lost: the final version equals the number of
 * successful writes and the summary holds every mark.
 */
export async function runReadModifyWriteLoops(
  writers: ContextRepository[],
  options: ReadModifyWriteOptions,
): Promise<ReadModifyWriteOutcome> {
  const maxAttempts = options.maxAttemptsPerWriter ?? options.writesPerWriter * 50;
  const outcome: ReadModifyWriteOutcome = {
    successes: writers.map(() => 0),
    conflicts: 0,
    failures: [],
    marks: [],
    final: null,
    missingMarks: [],
  };
  const base = makeSnapshot({ sessionId: options.sessionId, userId: options.userId ?? null });

  const loop = async (repository: ContextRepository, writer: number) => {
    for (let attempt = 0; attempt < maxAttempts; attempt += 1) {
      if ((outcome.successes[writer] as number) >= options.writesPerWriter) return;
      const mark = `[w${writer}#${outcome.successes[writer]}]`;
      try {
        const current = await repository.get(options.sessionId);
        const version = (current?.version ?? 0) + 1;
        const next: SessionContext = {
          ...(current ?? base),
          summary: `${current?.summary ?? ''}${mark}`,
          version,
          updatedAt: new Date(base.createdAt.getTime() + version),
        };
        await repository.save(next, { expectedVersion: current?.version ?? null });
        outcome.successes[writer] = (outcome.successes[writer] as number) + 1;
        outcome.marks.push(mark);
      } catch (error) {
        if (VersionConflictError.isInstance(error)) {
          outcome.conflicts += 1;
          continue;
        }
        outcome.failures.push(error);
        return;
      }
    }
  };

  await Promise.all(writers.map((repository, writer) => loop(repository, writer)));
  outcome.final = await (writers[0] as ContextRepository).get(options.sessionId);
  const summary = outcome.final?.summary ?? '';
  outcome.missingMarks = outcome.marks.filter((mark) => !summary.includes(mark));
  return outcome;
}
