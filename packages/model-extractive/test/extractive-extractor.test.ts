import {
  type ContextDraft,
  ContextDraftSchema,
  ContextError,
  type ExtractionError,
  type ExtractionRequest,
  LIMITS,
  type Message,
  type SessionContext,
  type ValidationError,
} from '@ctx/core';
import { describe, expect, it } from 'vitest';
import { createExtractiveExtractor } from '../src/index.js';

const user = (content: string): Message => ({ role: 'user', content });
const assistant = (content: string): Message => ({ role: 'assistant', content });

function snapshotFrom(draft: ContextDraft, version = 1): SessionContext {
  const at = new Date('2026-01-02T03:04:05.678Z');
  return {
    sessionId: 'session-1',
    userId: null,
    summary: draft.summary,
    goal: draft.goal ?? null,
    plan: draft.plan ?? null,
    progress: draft.progress ?? null,
    createdAt: at,
    updatedAt: at,
    version,
  };
}

/** Runs the extractor turn after turn, feeding each draft back as `previous`, like the store does. */
async function converse(
  turns: Message[][],
  options: { planning: boolean; start?: SessionContext | null; instructions?: string },
  extractor = createExtractiveExtractor(),
): Promise<ContextDraft> {
  let previous = options.start ?? null;
  let draft: ContextDraft = { summary: previous?.summary ?? '' };
  for (const messages of turns) {
    const request: ExtractionRequest = { previous, messages, planning: options.planning };
    if (options.instructions) request.instructions = options.instructions;
    const result = await extractor.extract(request);
    expect(ContextDraftSchema.safeParse(result.draft).success).toBe(true);
    draft = result.draft;
    previous = snapshotFrom(draft, (previous?.version ?? 0) + 1);
  }
  return draft;
}

const TODO_TURNS: Message[][] = [
  [
    user("I'm designing a REST API for a todo app. Should I use PUT or PATCH for updates?"),
    assistant(
      'Great question! Use PATCH for partial updates, where the client sends only the fields that changed, such as `completed: true`. Use PUT only when the client replaces the whole todo resource. Most todo apps toggle a single field, so PATCH /todos/{id} is the better fit. Hope this helps!',
    ),
  ],
  [
    user('What about the delete endpoint?'),
    assistant(
      'Use DELETE /todos/{id} and return 204 No Content on success. Return 404 Not Found when the todo does not exist, and make the operation idempotent so that repeating it is safe.',
    ),
  ],
];

const DEPLOY_REPLY = `Sure! Here's a plan to deploy your Python app to production:

1. **Containerize the app**: write a Dockerfile that installs dependencies from requirements.txt and runs the app with gunicorn.
2. **Set up the database**: provision a managed PostgreSQL instance and run the database migrations.
3. **Configure environment variables** - store secrets such as DATABASE_URL in the platform's secret manager, never in the image.
4. **Deploy behind a reverse proxy**: put nginx in front of gunicorn and enable HTTPS with Let's Encrypt.
5. **Add monitoring and logging**: ship logs to a central service and set up health checks and alerts.

Let me know when you're done with step 1.`;

const DEPLOY_PLAN = [
  'Containerize the app',
  'Set up the database',
  'Configure environment variables',
  'Deploy behind a reverse proxy',
  'Add monitoring and logging',
];

const DEPLOY_START: Message[] = [
  user('Help me deploy a Python app to production. Give me the steps.'),
  assistant(DEPLOY_REPLY),
];

function planned(overrides: Partial<SessionContext> = {}): SessionContext {
  return {
    ...snapshotFrom({
      summary: 'User: Help me deploy a Python app to production.',
      goal: 'Deploy a Python app to production',
      plan: [...DEPLOY_PLAN],
      progress: [],
    }),
    ...overrides,
  };
}

async function planFromReply(reply: string, previous: SessionContext | null = null) {
  const extractor = createExtractiveExtractor();
  const { draft } = await extractor.extract({
    previous,
    messages: [user('How should I go about it? Give me a plan.'), assistant(reply)],
    planning: true,
  });
  return draft.plan;
}

async function progressAfter(statement: string, from: Message['role'] = 'user') {
  const extractor = createExtractiveExtractor();
  const { draft } = await extractor.extract({
    previous: planned(),
    messages: [{ role: from, content: statement }],
    planning: true,
  });
  return draft.progress;
}

describe('createExtractiveExtractor: summary', () => {
  it('keeps the todo REST API, PUT vs PATCH and the delete endpoint across two updates', async () => {
    const draft = await converse(TODO_TURNS, { planning: false });
    expect(Object.keys(draft)).toEqual(['summary']);
    expect(draft.summary).toContain('REST API for a todo app');
    expect(draft.summary).toContain('PUT');
    expect(draft.summary).toContain('PATCH');
    expect(draft.summary).toMatch(/DELETE \/todos\/\{id\}/);
    expect(draft.summary).not.toContain('Hope this helps');
    expect(draft.summary.length).toBeLessThanOrEqual(1200);
  });

  it('writes the chosen sentences in conversation order with speaker labels', async () => {
    const { draft } = await createExtractiveExtractor().extract({
      previous: null,
      messages: TODO_TURNS.flat(),
      planning: false,
    });
    expect(draft.summary.startsWith("User: I'm designing a REST API for a todo app.")).toBe(true);
    const put = draft.summary.indexOf('PUT or PATCH');
    const answer = draft.summary.indexOf('Assistant: Use PATCH for partial updates');
    const deletion = draft.summary.indexOf('DELETE /todos/{id}');
    expect(put).toBeGreaterThan(0);
    expect(answer).toBeGreaterThan(put);
    expect(deletion).toBeGreaterThan(answer);
    expect(draft.summary).not.toContain('`');
  });

  it('reports a chars/4 input estimate and no output tokens', async () => {
    const messages = [user('x'.repeat(400)), assistant('y'.repeat(401))];
    const result = await createExtractiveExtractor().extract({
      previous: snapshotFrom({ summary: 'z'.repeat(100) }),
      messages,
      planning: false,
      instructions: 'w'.repeat(99),
    });
    expect(result.usage).toEqual({ inputTokens: 250, outputTokens: 0 });
  });

  it('is deterministic: the same request gives the same draft', async () => {
    const request: ExtractionRequest = {
      previous: snapshotFrom({ summary: 'User: I am planning a trip to Lisbon in May.' }),
      messages: [...TODO_TURNS.flat(), ...DEPLOY_START],
      planning: true,
    };
    const first = await createExtractiveExtractor().extract(request);
    const second = await createExtractiveExtractor().extract(structuredClone(request));
    const third = await createExtractiveExtractor().extract(request);
    expect(second).toEqual(first);
    expect(third).toEqual(first);
  });

  it('stays bounded over 200 turns and keeps the latest turn and the stated objective', async () => {
    const turns: Message[][] = [TODO_TURNS[0] as Message[]];
    for (let turn = 1; turn < 200; turn += 1) {
      turns.push([
        user(
          `Should the endpoint /todos/batch-${turn} accept up to ${turn * 10} items per request?`,
        ),
        assistant(
          `Yes, cap /todos/batch-${turn} at ${turn * 10} items and return 413 Payload Too Large above that limit, because clients can then split their uploads predictably.`,
        ),
      ]);
    }
    const draft = await converse(turns, { planning: false });
    expect(draft.summary.length).toBeLessThanOrEqual(1200);
    expect(draft.summary.match(/[.!?…](?=\s|$)/g)?.length ?? 0).toBeLessThanOrEqual(6);
    expect(draft.summary).toContain('/todos/batch-199');
    expect(draft.summary).toContain('REST API for a todo app');
  });

  it('honours maxSummarySentences and maxSummaryChars, shortening a huge sentence', async () => {
    const extractor = createExtractiveExtractor({ maxSummarySentences: 2, maxSummaryChars: 200 });
    const { draft } = await extractor.extract({
      previous: null,
      messages: [
        ...TODO_TURNS.flat(),
        user(`Our schema has ${Array.from({ length: 300 }, (_, i) => `field_${i}`).join(' ')}`),
      ],
      planning: false,
    });
    expect(draft.summary.length).toBeLessThanOrEqual(200);
    expect(draft.summary.length).toBeGreaterThan(50);
    expect(draft.summary.match(/(?:User|Assistant): /g)?.length ?? 0).toBeLessThanOrEqual(2);
    const { draft: huge } = await createExtractiveExtractor({ maxSummaryChars: 100 }).extract({
      previous: null,
      messages: [
        user(`Our schema has ${Array.from({ length: 300 }, (_, i) => `f${i}`).join(' ')}`),
      ],
      planning: false,
    });
    expect(huge.summary.length).toBeLessThanOrEqual(100);
    expect(huge.summary.endsWith('…')).toBe(true);
  });

  it('keeps the previous summary as it is when the new turn adds nothing informative', async () => {
    const first = await converse([TODO_TURNS[0] as Message[]], { planning: false });
    const again = await converse(
      [[user('Thanks!'), assistant('You are welcome. Happy to help!')]],
      {
        planning: false,
        start: snapshotFrom(first),
      },
    );
    expect(again.summary).toBe(first.summary);
  });

  it('integrates a model-written previous summary, placing its sentences first', async () => {
    const { draft } = await createExtractiveExtractor().extract({
      previous: snapshotFrom({
        summary:
          'The user maintains a Django 5.1 service called billing-api. They decided to move from SQLite to PostgreSQL 16.',
      }),
      messages: [
        user('Which connection pooler should I use with PostgreSQL 16?'),
        assistant(
          'Use PgBouncer in transaction mode, because Django opens short-lived connections.',
        ),
      ],
      planning: false,
    });
    expect(draft.summary).toMatch(/^The user maintains a Django 5\.1 service called billing-api\./);
    expect(draft.summary).toContain('PgBouncer in transaction mode');
    expect(draft.summary.indexOf('PgBouncer')).toBeGreaterThan(draft.summary.indexOf('Django 5.1'));
  });

  it('drops near-duplicates, tool JSON, code blocks and system messages', async () => {
    const sentence =
      'We decided to store timestamps in UTC as ISO 8601 strings in the events table.';
    const { draft } = await createExtractiveExtractor().extract({
      previous: null,
      messages: [
        { role: 'system', content: 'You are a helpful assistant with SECRET_SYSTEM_PROMPT rules.' },
        user(sentence),
        assistant(
          `Agreed. ${sentence}\n\n\`\`\`sql\nCREATE TABLE events (created_at TEXT NOT NULL);\n\`\`\``,
        ),
        { role: 'tool', content: '{"rows": [{"id": 1, "created_at": "2026-01-01T00:00:00Z"}]}' },
      ],
      planning: false,
    });
    expect(draft.summary.split('ISO 8601')).toHaveLength(2);
    expect(draft.summary).not.toContain('SECRET_SYSTEM_PROMPT');
    expect(draft.summary).not.toContain('CREATE TABLE');
    expect(draft.summary).not.toContain('"rows"');
  });

  it('favours sentences that share words with the instructions', async () => {
    const messages = [
      assistant(
        'Tuesday could be a lentil curry with basmati rice and mango chutney. Nobody at home eats shellfish or peanuts.',
      ),
    ];
    const extractor = createExtractiveExtractor({ maxSummarySentences: 1 });
    const plain = await extractor.extract({ previous: null, messages, planning: false });
    const guided = await extractor.extract({
      previous: null,
      messages,
      planning: false,
      instructions: 'Keep track of what people at home cannot eat, such as shellfish or peanuts.',
    });
    expect(plain.draft.summary).toContain('lentil curry');
    expect(guided.draft.summary).toBe('Assistant: Nobody at home eats shellfish or peanuts.');
  });

  it('always returns a storable draft, even from hostile input', async () => {
    const { draft } = await createExtractiveExtractor().extract({
      previous: null,
      messages: [
        user(
          `Broken text \u0000 with a lone surrogate \uD800 in the middle of the deployment notes.`,
        ),
        assistant(`${'word '.repeat(200_000)}end`),
        ...Array.from({ length: 300 }, (_, index) =>
          assistant(
            `Reply number ${index} mentions the cache_ttl_${index} setting and the region eu-west-${index}.`,
          ),
        ),
      ],
      planning: true,
    });
    expect(ContextDraftSchema.safeParse(draft).success).toBe(true);
    expect(draft.summary.length).toBeLessThanOrEqual(1200);
    expect(draft.summary).not.toContain('\u0000');
  });

  it('keeps a short bulleted recommendation in summary mode', async () => {
    const { draft } = await createExtractiveExtractor().extract({
      previous: null,
      messages: [user('Which tools do you recommend?'), assistant('- Use ruff\n- Pin uv 0.5')],
      planning: false,
    });
    expect(draft.summary).toBe(
      'User: Which tools do you recommend? Assistant: Use ruff. Pin uv 0.5.',
    );
  });

  it('returns an empty summary for an empty first request', async () => {
    const { draft } = await createExtractiveExtractor().extract({
      previous: null,
      messages: [],
      planning: true,
    });
    expect(draft).toEqual({ summary: '', goal: null, plan: null, progress: null });
  });
});

describe('createExtractiveExtractor: goal, plan and progress', () => {
  it('follows the deployment scenario: goal and plan, then steps completed by number and by name', async () => {
    const first = await converse([DEPLOY_START], { planning: true });
    expect(first.goal).toBe('Deploy a Python app to production');
    expect(first.plan).toEqual(DEPLOY_PLAN);
    expect(first.progress).toEqual([]);

    const second = await converse(
      [
        [
          user("Done with step 1. What's next?"),
          assistant(
            'Next, set up the database: create a PostgreSQL 16 instance and apply the migrations with `alembic upgrade head`.',
          ),
        ],
      ],
      { planning: true, start: snapshotFrom(first) },
    );
    expect(second.goal).toBe(first.goal);
    expect(second.plan).toEqual(DEPLOY_PLAN);
    expect(second.progress).toEqual(['Containerize the app']);

    const third = await converse(
      [
        [
          user('Finished the database migration, everything ran fine.'),
          assistant('Nice work. Now configure the environment variables in your hosting platform.'),
        ],
      ],
      { planning: true, start: snapshotFrom(second) },
    );
    expect(third.progress).toEqual(['Containerize the app', 'Set up the database']);
    expect(third.summary).toContain('Deploy');
  });

  it('sets the goal from the user only, and only from a stated objective', async () => {
    const { draft } = await createExtractiveExtractor().extract({
      previous: null,
      messages: [
        user('What time zone does the server use?'),
        assistant('I want to help you build a great deployment pipeline.'),
      ],
      planning: true,
    });
    expect(draft.goal).toBeNull();
  });

  it.each([
    ["I'm designing a REST API for a todo app.", 'Design a REST API for a todo app'],
    ['I want to build a CLI for encrypted backups.', 'Build a CLI for encrypted backups'],
    ["Hi, I'm trying to speed up our CI pipeline, please.", 'Speed up our CI pipeline'],
    [
      'My goal is to learn Rust well enough to port our parser.',
      'Learn Rust well enough to port our parser',
    ],
    ["Let's plan a three-day trip to Lisbon.", 'Plan a three-day trip to Lisbon'],
    ['I need to migrate our database to PostgreSQL 16.', 'Migrate our database to PostgreSQL 16'],
    [
      'Could you help me write a cover letter for a backend role?',
      'Write a cover letter for a backend role',
    ],
    ["We're setting up a monorepo with pnpm and turbo.", 'Set up a monorepo with pnpm and turbo'],
  ])('reads the goal from %j', async (statement, goal) => {
    const { draft } = await createExtractiveExtractor().extract({
      previous: null,
      messages: [user(statement)],
      planning: true,
    });
    expect(draft.goal).toBe(goal);
  });

  it('keeps the goal and plan when nothing new is stated, even after a passing "I need to"', async () => {
    const previous = planned({ progress: ['Containerize the app'] });
    const { draft } = await createExtractiveExtractor().extract({
      previous,
      messages: [
        user('I need to restart the server first, it is stuck.'),
        assistant('Run `sudo systemctl restart myapp` and check the logs with journalctl.'),
      ],
      planning: true,
    });
    expect(draft.goal).toBe('Deploy a Python app to production');
    expect(draft.plan).toEqual(DEPLOY_PLAN);
    expect(draft.progress).toEqual(['Containerize the app']);
  });

  it('replaces the goal when the user explicitly changes it', async () => {
    const { draft } = await createExtractiveExtractor().extract({
      previous: planned(),
      messages: [user('Change of plans: I want to deploy it to Kubernetes instead of a VM.')],
      planning: true,
    });
    expect(draft.goal).toBe('Deploy it to Kubernetes instead of a VM');
    const { draft: next } = await createExtractiveExtractor().extract({
      previous: planned(),
      messages: [user('My goal is now to ship the mobile app before Friday.')],
      planning: true,
    });
    expect(next.goal).toBe('Ship the mobile app before Friday');
  });

  it('reads bulleted plans with -, * and •', async () => {
    for (const marker of ['-', '*', '•']) {
      const plan = await planFromReply(
        `Here is what I suggest:\n\n${marker} Book the flights\n${marker} Reserve a hotel near Alfama\n${marker} Buy a Lisboa Card\n\nEnjoy!`,
      );
      expect(plan).toEqual([
        'Book the flights',
        'Reserve a hotel near Alfama',
        'Buy a Lisboa Card',
      ]);
    }
  });

  it('strips Markdown and keeps the headline of long steps', async () => {
    const plan = await planFromReply(
      [
        '1) Install `uv` and create a virtual environment',
        '2) Read the [deployment guide](https://example.com/guide) carefully',
        '3) Write the service configuration: the unit file needs the working directory, the user, the environment file and a restart policy',
        '4) Run the smoke tests — they call every endpoint once and compare the responses with the recorded fixtures',
        `5) ${'Tune the worker count for the expected load '.repeat(5)}`,
      ].join('\n'),
    );
    expect(plan?.slice(0, 4)).toEqual([
      'Install uv and create a virtual environment',
      'Read the deployment guide carefully',
      'Write the service configuration',
      'Run the smoke tests',
    ]);
    expect(plan?.[4]?.length).toBeLessThanOrEqual(120);
    expect(plan?.[4]?.endsWith('…')).toBe(true);
  });

  it('reads "Step N:" headings with text in between, ignoring sub-bullets', async () => {
    const plan = await planFromReply(
      [
        '### Step 1: Write the Dockerfile',
        'Start from python:3.12-slim.',
        '- copy requirements.txt first',
        '- then the code',
        '',
        '### Step 2: Push the image',
        'Tag it with the git SHA.',
        '',
        '**Step 3:** Roll out the new version',
      ].join('\n'),
    );
    expect(plan).toEqual(['Write the Dockerfile', 'Push the image', 'Roll out the new version']);
  });

  it('ignores one-item lists, lists written by the user, and keeps the previous plan then', async () => {
    const previous = planned();
    const { draft } = await createExtractiveExtractor().extract({
      previous,
      messages: [
        user('My checklist:\n1. Buy milk\n2. Call mom\n3. Fix the bike'),
        assistant('Noted. One thing to add:\n- Back up the database before the migration'),
      ],
      planning: true,
    });
    expect(draft.plan).toEqual(DEPLOY_PLAN);
  });

  it('does not let the details of one step overwrite the plan', async () => {
    const previous = planned({ progress: ['Containerize the app'] });
    const { draft } = await createExtractiveExtractor().extract({
      previous,
      messages: [
        user('How do I do the database part?'),
        assistant(
          'For the database:\n1. Create the instance\n2. Create a user\n3. Run `alembic upgrade head`',
        ),
      ],
      planning: true,
    });
    expect(draft.plan).toEqual(DEPLOY_PLAN);
    expect(draft.progress).toEqual(['Containerize the app']);
  });

  it('replaces the plan with a revised one, keeping completed steps that remain in it', async () => {
    const previous = planned({ progress: ['Containerize the app', 'Set up the database'] });
    const { draft } = await createExtractiveExtractor().extract({
      previous,
      messages: [
        user('Can we skip the reverse proxy? The platform terminates TLS for us.'),
        assistant(
          "Yes. Here's the revised plan:\n1. Containerize the app\n2. Configure environment variables\n3. Add monitoring and logging",
        ),
      ],
      planning: true,
    });
    expect(draft.plan).toEqual([
      'Containerize the app',
      'Configure environment variables',
      'Add monitoring and logging',
    ]);
    expect(draft.progress).toEqual(['Containerize the app']);
  });

  it('reads step numbers said before a revised plan against the plan of that moment', async () => {
    const { draft } = await createExtractiveExtractor().extract({
      previous: planned(),
      messages: [
        user('Done with step 1 and step 3. Can we drop the reverse proxy from the plan?'),
        assistant(
          'Sure, here is the updated plan:\n1. Set up the database\n2. Configure environment variables\n3. Containerize the app\n4. Add monitoring and logging',
        ),
        user('Step 1 is done too.'),
      ],
      planning: true,
    });
    expect(draft.plan).toEqual([
      'Set up the database',
      'Configure environment variables',
      'Containerize the app',
      'Add monitoring and logging',
    ]);
    expect(draft.progress).toEqual([
      'Set up the database',
      'Configure environment variables',
      'Containerize the app',
    ]);
  });

  it.each([
    ['Step 2 is done.', [2]],
    ['I have finished steps 1 and 2.', [1, 2]],
    ['Completed step 3, moving on.', [3]],
    ['OK, finished steps 1-3.', [1, 2, 3]],
    ["I'm done with the first two steps.", [1, 2]],
    ['Done with step one!', [1]],
    ['The third step is complete.', [3]],
    ['Step 4: done.', [4]],
    ['All the steps are done.', [1, 2, 3, 4, 5]],
    ["I've finished the migration of the database.", [2]],
    ['The environment variables are done now.', [3]],
    ['Wrapped up the monitoring and logging.', [5]],
  ])('counts %j as a completion', async (statement, steps) => {
    expect(await progressAfter(statement)).toEqual(steps.map((step) => DEPLOY_PLAN[step - 1]));
  });

  it('counts a completion stated by the assistant', async () => {
    expect(await progressAfter('Great, step 1 is done: your image builds.', 'assistant')).toEqual([
      'Containerize the app',
    ]);
  });

  it.each([
    'Step 2 sounds hard.',
    'I have not finished step 2 yet.',
    "I haven't finished step 2.",
    'Is step 2 done?',
    'Once you have finished step 2, restart the service.',
    "Let me know when you're done with step 1.",
    'Step 3 is done by editing the .env file.',
    'Step 3 will be done tomorrow.',
    'Step 9 is done.',
    'I finished my lunch.',
    'I am almost done with step 4.',
  ])('does not count %j as a completion', async (statement) => {
    expect(await progressAfter(statement)).toEqual([]);
  });

  it('ignores completions in a tool message', async () => {
    expect(await progressAfter('status: step 1 is done', 'tool')).toEqual([]);
  });
});

describe('createExtractiveExtractor: contract', () => {
  it('throws an aborted ExtractionError for an already-aborted signal', async () => {
    const controller = new AbortController();
    controller.abort(new Error('user left'));
    const error = await createExtractiveExtractor()
      .extract(
        { previous: null, messages: TODO_TURNS.flat(), planning: false },
        { signal: controller.signal },
      )
      .catch((caught: unknown) => caught);
    expect(ContextError.isInstance(error)).toBe(true);
    expect((error as ExtractionError).code).toBe('EXTRACTION_FAILED');
    expect((error as ExtractionError).reason).toBe('aborted');
    expect((error as ExtractionError).cause).toBe(controller.signal.reason);
  });

  it.each([
    { maxSummarySentences: 0 },
    { maxSummarySentences: 2.5 },
    { maxSummaryChars: 10 },
    { maxSummaryChars: LIMITS.summaryMaxLength + 1 },
    { maxSummaryChars: Number.NaN },
  ])('rejects invalid options %j with INVALID_CONFIG', (options) => {
    let caught: unknown;
    try {
      createExtractiveExtractor(options);
    } catch (error) {
      caught = error;
    }
    expect(ContextError.hasCode(caught, 'INVALID_CONFIG')).toBe(true);
    expect((caught as ValidationError).message).toMatch(/maxSummary(?:Sentences|Chars) must be/);
  });
});
