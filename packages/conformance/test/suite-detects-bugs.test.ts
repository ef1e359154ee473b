import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { startVitest } from 'vitest/node';
import { BROKEN_EXTRACTORS } from './fixtures/broken-extractors.js';
import { BROKEN_REPOSITORIES } from './fixtures/broken-repositories.js';

interface TaskLike {
  name: string;
  type: string;
  result?: { state?: string };
  tasks?: TaskLike[];
}

interface Outcome {
  failed: string[];
  passed: string[];
}

/** Groups test results by the suite's top-level describe title. */
function collect(task: TaskLike, suite: string | null, into: Map<string, Outcome>): void {
  const title = suite ?? (/^Context\w+ conformance: /.test(task.name) ? task.name : null);
  if (task.type === 'test' && title) {
    const outcome = into.get(title) ?? { failed: [], passed: [] };
    if (task.result?.state === 'fail') outcome.failed.push(task.name);
    if (task.result?.state === 'pass') outcome.passed.push(task.name);
    into.set(title, outcome);
  }
  for (const child of task.tasks ?? []) collect(child, title, into);
}

// Runs the suites against deliberately broken backends (test/fixtures) in a nested vitest, and
// checks that the tests meant to catch each bug do fail.
describe('the suites catch broken backends', () => {
  const results = new Map<string, Outcome>();

  beforeAll(async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const vitest = await startVitest('test', [], {
      root,
      config: false,
      include: ['test/fixtures/broken.suite.ts'],
      watch: false,
      reporters: [{}],
    });
    try {
      for (const file of vitest.state.getFiles())
        collect(file as unknown as TaskLike, null, results);
    } finally {
      await vitest.close();
      // The nested run failed on purpose; that must not decide this run's exit code.
      process.exitCode = 0;
    }
  }, 120_000);

  for (const broken of BROKEN_REPOSITORIES) {
    it(`repository suite: ${broken.name}`, () => {
      const outcome = results.get(`ContextRepository conformance: ${broken.name}`);
      expect(outcome?.passed.length, 'the suite ran').toBeGreaterThan(0);
      expect(outcome?.failed).toEqual(expect.arrayContaining(broken.mustFail));
    });
  }

  for (const broken of BROKEN_EXTRACTORS) {
    it(`extractor suite: ${broken.name}`, () => {
      const outcome = results.get(`ContextExtractor conformance: ${broken.name}`);
      expect(outcome?.passed.length, 'the suite ran').toBeGreaterThan(0);
      expect(outcome?.failed).toEqual(expect.arrayContaining(broken.mustFail));
    });
  }
});
