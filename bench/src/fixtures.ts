import type { ContextDraft, ContextExtractor, Message, SessionContext } from '@ctx/core';

/** A small, fast, seeded PRNG (mulberry32): the same seed always gives the same sequence. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(random: () => number, items: readonly T[]): T =>
  items[Math.floor(random() * items.length)] as T;

const between = (random: () => number, low: number, high: number) =>
  low + Math.floor(random() * (high - low + 1));

const COMPONENTS = [
  'the billing service',
  'the search index',
  'the onboarding flow',
  'the reporting API',
  'the mobile client',
  'the import pipeline',
  'the notification worker',
  'the admin console',
  'the session cache',
  'the audit log',
] as const;
const THINGS = [
  'rate limiting',
  'pagination',
  'retries',
  'schema migrations',
  'error handling',
  'authentication',
  'caching',
  'input validation',
  'background jobs',
  'observability',
  'connection pooling',
  'feature flags',
] as const;
const TECH = [
  'PostgreSQL',
  'Redis',
  'SQLite',
  'a token bucket',
  'keyset pagination',
  'OpenTelemetry',
  'a job queue',
  'JSON Schema',
  'exponential backoff',
  'an LRU cache',
] as const;
const REASONS = [
  'it keeps latency predictable under load',
  'the team already operates it',
  'it avoids a second network round trip',
  'it is easier to test in isolation',
  'the current approach loses writes during deploys',
  'the vendor limit is 600 requests per minute',
  'it survives a restart without losing state',
] as const;
const ERRORS = [
  'E1042',
  'HTTP 429',
  'HTTP 503',
  'ECONNRESET',
  'a deadlock',
  'a timeout after 30 s',
];
const CONDITIONS = [
  'two workers pick up the same job',
  'the nightly import runs',
  'a user has more than 500 items',
  'the cache is cold',
  'the upstream provider is slow',
] as const;

const STEPS = [
  'Write down the requirements and constraints',
  'Design the data model and the migrations',
  'Implement the storage layer with compare-and-set writes',
  'Add rate limiting and retries around the provider calls',
  'Write integration tests against real services',
  'Add metrics, traces and alerts',
  'Roll out behind a feature flag and monitor',
] as const;

function userMessage(random: () => number, turn: number): string {
  const component = pick(random, COMPONENTS);
  const thing = pick(random, THINGS);
  const sentences = [
    `How should we handle ${thing} in ${component}?`,
    `We decided to use ${pick(random, TECH)} for ${thing} because ${pick(random, REASONS)}.`,
    `${component[0]?.toUpperCase()}${component.slice(1)} fails with ${pick(random, ERRORS)} when ${pick(random, CONDITIONS)}.`,
    `Can you compare ${pick(random, TECH)} and ${pick(random, TECH)} for ${thing}?`,
    `The deadline for ${component} moved to week ${between(random, 2, 40)}.`,
    `Keep in mind that ${pick(random, REASONS)}.`,
  ];
  const count = between(random, 1, 3);
  const chosen = Array.from({ length: count }, () => pick(random, sentences));
  if (turn % 25 === 0) chosen.push(`Step ${between(random, 1, STEPS.length)} is done.`);
  return chosen.join(' ');
}

function assistantMessage(random: () => number): string {
  const component = pick(random, COMPONENTS);
  const thing = pick(random, THINGS);
  const tech = pick(random, TECH);
  const sentences = [
    `For ${thing} in ${component} I suggest ${tech}, because ${pick(random, REASONS)}.`,
    `The failure with ${pick(random, ERRORS)} most likely happens when ${pick(random, CONDITIONS)}; add a guard and a test that reproduces it.`,
    `${tech} needs one configuration change: set the limit to ${between(random, 10, 900)} and the timeout to ${between(random, 1, 60)} seconds.`,
    `Decision: ${component} keeps ${thing} in one place so that the behaviour stays consistent across services.`,
    `An open question is whether ${component} should share ${thing} with ${pick(random, COMPONENTS)}.`,
    `Here is the outline: validate the input, read the current version, write with compare-and-set, and retry on a conflict at most ${between(random, 2, 5)} times.`,
    `Measure it first: the p99 latency of ${component} is the number to watch, not the average.`,
  ];
  const count = between(random, 3, 8);
  return Array.from({ length: count }, () => pick(random, sentences)).join(' ');
}

/**
 * A deterministic synthetic conversation: a user and an assistant working on a software project.
 * Turn 1 states the goal and gets a numbered plan; later turns discuss components, decisions and
 * errors, and now and then report a finished step. Same seed, same conversation.
 */
export function createConversation(turns: number, seed = 42): Message[][] {
  const random = createRandom(seed);
  const conversation: Message[][] = [
    [
      {
        role: 'user',
        content:
          'I want to build a reliable order-processing backend for our shop. We have six weeks and two engineers.',
      },
      {
        role: 'assistant',
        content: `Here is a plan:\n${STEPS.map((step, index) => `${index + 1}. ${step}`).join('\n')}\nWe can start with the requirements.`,
      },
    ],
  ];
  for (let turn = 2; turn <= turns; turn += 1) {
    conversation.push([
      { role: 'user', content: userMessage(random, turn) },
      { role: 'assistant', content: assistantMessage(random) },
    ]);
  }
  return conversation.slice(0, turns);
}

/** Total characters of a list of messages' contents. */
export const contentLength = (messages: readonly Message[]) =>
  messages.reduce((sum, message) => sum + message.content.length, 0);

/**
 * A realistic stored snapshot: a ~1200-character summary (the extractive default bound), goal,
 * 7-step plan, 2 done, and two small custom fields (stored as given: repositories need no schema).
 */
export function createSnapshotFixture(sessionId: string, userId: string | null): SessionContext {
  const random = createRandom(7);
  let summary = '';
  while (summary.length < 1150) summary += `${assistantMessage(random).split('. ')[0]}. `;
  const created = new Date(Date.UTC(2025, 0, 1, 12, 0, 0, 0));
  return {
    sessionId,
    userId,
    summary: summary.slice(0, 1200).trim(),
    goal: 'Build a reliable order-processing backend for the shop in six weeks with two engineers',
    plan: [...STEPS],
    progress: [STEPS[0], STEPS[1]],
    createdAt: created,
    updatedAt: created,
    version: 1,
    fields: { platform: 'fly.io', region: 'fra' },
  };
}

/** The snapshot written as version `version` (updatedAt moves forward by a millisecond a version). */
export function nextVersion(base: SessionContext, version: number): SessionContext {
  return {
    ...base,
    plan: base.plan ? [...base.plan] : null,
    progress: base.progress ? [...base.progress] : null,
    fields: base.fields ? { ...base.fields } : null,
    updatedAt: new Date(base.createdAt.getTime() + version),
    version,
  };
}

/** One turn (user + assistant) of realistic length for update benchmarks. */
export function createTurn(index: number): Message[] {
  const random = createRandom(1000 + index);
  return [
    { role: 'user', content: userMessage(random, 2) },
    { role: 'assistant', content: assistantMessage(random) },
  ];
}

/**
 * An extractor that answers at once with a fixed planning draft: measures everything
 * `SessionContextStore.update` does except the model.
 */
export function createInstantExtractor(draft: ContextDraft): ContextExtractor {
  return {
    async extract() {
      return { draft: { ...draft } };
    },
  };
}
