import type {
  ContextExtractor,
  ContextRepository,
  ExtractionRequest,
  RepositoryCapabilities,
  SessionContext,
  StoredFields,
} from '@ctx/core';

/**
 * Options the suite passes to {@link RepositoryHarness.createRepository} when it needs a repository
 * with an optional capability switched on. Forward them to the adapter's own options; when the
 * suite passes none, create a repository with no TTL and no history.
 */
export interface RepositoryFactoryOptions {
  /**
   * Expire sessions this many milliseconds after their last write (TTL group; the suite uses 1000).
   * @default undefined (never expire)
   */
  ttlMs?: number;
  /**
   * Keep the last N versions of each session (history group; the suite uses 3).
   * @default undefined (no history)
   */
  historyLimit?: number;
  /**
   * The most pending turns a session may hold (turnLog group; the suite uses 3).
   * @default undefined (the adapter's default)
   */
  maxPendingTurns?: number;
}

/**
 * What an adapter gives {@link describeContextRepository}. The suite calls `createRepository` for
 * every test (and closes what it created), so every test starts from a fresh handle on the same
 * backend; tests use random session and user ids, so suites may share one server or file.
 */
export interface RepositoryHarness {
  /** Shown in the suite's `describe` title, e.g. `"sqlite (file)"`. */
  name: string;
  /**
   * A new repository on the shared backend. Called once or more per test; the suite closes every
   * repository it created after the test, so share clients (pools, connections) through injection
   * and let the repository leave them open.
   *
   * @example
   * ```ts
   * createRepository: (options) => createRedisRepository({ client: redis, ...options }),
   * ```
   */
  createRepository(
    options?: RepositoryFactoryOptions,
  ): ContextRepository | Promise<ContextRepository>;
  /**
   * A repository on an independent connection to the same data (another client, pool, process
   * handle). Enables the cross-connection concurrency tests; omit it for single-process backends.
   */
  createSecondConnection?(
    options?: RepositoryFactoryOptions,
  ): ContextRepository | Promise<ContextRepository>;
  /**
   * Reads the stored row of a session straight through the driver, bypassing the repository, so
   * the suite can verify what was really persisted (after every save, delete and refused save).
   * Return `null` when no live session is stored: no row, or only a tombstone (a deleted or purged
   * session's leftover that keeps its last version). Omit it only when the backend has no
   * out-of-band view.
   */
  readRaw?(sessionId: string): Promise<RawSnapshot | null>;
  /**
   * Optional capabilities the adapter supports: each one turns on a group of tests, which also
   * checks that the repository declares it in `repository.capabilities`.
   * @default {} (no optional group runs)
   */
  capabilities?: Partial<RepositoryCapabilities>;
  /** Called once after the suite (close shared clients, drop schemas). */
  teardown?(): void | Promise<void>;
  /**
   * Milliseconds to wait for a TTL to elapse, on top of `ttlMs`, for backends whose expiry is
   * coarse. @default 250
   */
  ttlSlackMs?: number;
  /**
   * Time limit of each test in milliseconds (raise it for slow remote backends).
   * @default 30000
   */
  testTimeoutMs?: number;
}

/**
 * A persisted snapshot as the driver sees it, decoded just enough to compare with what was saved
 * (JSON columns parsed, column names mapped to these). Every field must equal what was saved.
 */
export interface RawSnapshot {
  /** The stored session id. */
  sessionId: string;
  /** The stored owner, `null` when the session has none. */
  userId: string | null;
  /** The stored summary. */
  summary: string;
  /** The stored goal, `null` when absent. */
  goal: string | null;
  /** The stored plan, `null` when absent (not `[]`). */
  plan: string[] | null;
  /** The stored progress, `null` when absent (not `[]`). */
  progress: string[] | null;
  /** Creation time as epoch milliseconds. */
  createdAt: number;
  /** Last update time as epoch milliseconds. */
  updatedAt: number;
  /** The stored version. */
  version: number;
  /**
   * The stored custom fields (the JSON column or hash field, parsed), `null` when absent. Leave it
   * out when the backend does not store fields; when present it must equal what was saved.
   */
  fields?: StoredFields | null;
}

/**
 * One thing the simulated provider can be told to do on the next call. Adapters translate each
 * into their provider's wire format (status codes, bodies, stop reasons).
 */
export type ProviderScenario =
  /** Answer with this JSON text as the model's output (a valid extraction or not). */
  | { kind: 'output'; text: string; usage?: { inputTokens: number; outputTokens: number } }
  /** The model refused (OpenAI `refusal`, Gemini block/`SAFETY`). */
  | { kind: 'refusal' }
  /** Output cut off by the token limit. */
  | { kind: 'truncated'; text?: string }
  /** An empty reply (no text at all). */
  | { kind: 'empty' }
  /**
   * An HTTP error from the provider, with the provider's error body. `retryAfterSeconds` is the
   * provider's usual retry hint (a `retry-after` header, or the body's own field where the provider
   * puts it there); `headers` are added to the reply exactly as given (the suite sends absurd
   * `retry-after` and `retry-after-ms` values to check they are clamped).
   */
  | {
      kind: 'http_error';
      status: 400 | 401 | 403 | 429 | 500 | 503;
      retryAfterSeconds?: number;
      headers?: Record<string, string>;
    }
  /** The provider never answers (until the client times out or aborts). */
  | { kind: 'hang' }
  /**
   * The server answers exactly this, bypassing the provider's format: the status (default 200), the
   * body byte for byte (an HTML page from a proxy, JSON cut off in the middle, an empty body), the
   * `content-type` (default `application/json`) and any extra headers.
   */
  | {
      kind: 'raw';
      status?: number;
      body: string;
      contentType?: string;
      headers?: Record<string, string>;
    }
  /**
   * A normal completion whose output text is `text`, with token usage exactly as given instead of
   * well-formed counts. An object's `inputTokens` and `outputTokens` are sent under the provider's
   * own names (OpenAI `input_tokens`, Gemini `promptTokenCount`, ...) with their values untouched
   * (strings, negatives, fractions); a key it lacks is left out. Any other value (a string, a
   * number) is sent in place of the provider's whole usage object.
   */
  | { kind: 'odd_usage'; text: string; usage: unknown };

/** What the simulated provider received. */
export interface RecordedProviderRequest {
  /** The model id sent. */
  model: string;
  /** The JSON schema sent for structured output, if any. */
  schema: unknown;
  /** Whether strict schema adherence was requested (where the provider has such a switch). */
  strict: boolean | undefined;
  /** All prompt text sent (system + user), concatenated, for content assertions. */
  promptText: string;
  /** The raw parsed request body. */
  body: unknown;
}

/**
 * What a model adapter gives {@link describeContextExtractor}: an extractor pointed at a local
 * server that speaks the provider's wire protocol, and a handle to script that server.
 */
export interface ExtractorHarness {
  /** Shown in the suite's `describe` title, e.g. `"openai (chat completions)"`. */
  name: string;
  /**
   * An extractor talking to the simulated provider. `timeoutMs` asks for an extractor with that
   * time limit (for the timeout test). Turn the SDK's own retries off (`maxRetries: 0`): the suite
   * expects one provider call per extraction.
   */
  createExtractor(options?: { timeoutMs?: number }): ContextExtractor | Promise<ContextExtractor>;
  /** Queue what the provider does on its next call(s), in order: one scenario per call. */
  enqueue(...scenarios: ProviderScenario[]): void;
  /** Requests received so far, oldest first, including the ones answered with an error. */
  requests(): RecordedProviderRequest[];
  /**
   * Clear queued scenarios and recorded requests, and end any request still hanging (called
   * before each test).
   */
  reset(): void;
  /** Called once after the suite (stop the local server). */
  teardown?(): void | Promise<void>;
  /**
   * Time limit of each test in milliseconds.
   * @default 30000
   */
  testTimeoutMs?: number;
}

export type { ExtractionRequest, SessionContext };
