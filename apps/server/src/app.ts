import {
  ContextError,
  type RenderOptions,
  renderSessionContext,
  type SessionContext,
  type SessionContextStore,
} from '@ctx/core';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HttpProblem, toHttpError } from './http-errors.js';
import { type InspectorPageOptions, renderInspectorPage } from './inspector.js';
import {
  IssueCollector,
  parseBooleanParam,
  parseContextQuery,
  parseJsonText,
  parseListQuery,
  parseSessionId,
  parseTurnBody,
  parseUserHeader,
  rejectUnknownParams,
  USER_HEADER,
} from './validation.js';

/** The session id the readiness probe reads: a cheap primary-key lookup that finds nothing. */
export const READINESS_PROBE_SESSION_ID = 'ctx-server-readiness-probe';

/** Options of {@link createServerApp}. */
export interface ServerAppOptions {
  /**
   * The store that serves every request. Its `repository` also answers the readiness probe. The
   * app never closes it: the caller flushes the store and closes the repository on shutdown.
   */
  store: SessionContextStore;
  /**
   * Serve the inspector page at `GET /`. `false` turns it off; an object sets its options.
   * @default true
   */
  inspector?: boolean | InspectorPageOptions;
  /** Largest accepted request body, in bytes; larger ones get 413 `PAYLOAD_TOO_LARGE`. @default 16_777_216 (16 MiB) */
  maxBodyBytes?: number;
  /** How long `GET /readyz` waits for the repository before answering 503. @default 2000 */
  readinessTimeoutMs?: number;
  /**
   * Returns true while the process drains before exit: `/readyz` then answers 503 and new turns
   * are refused with 503 `SHUTTING_DOWN`, so a load balancer sends them elsewhere.
   * @default () => false
   */
  isDraining?: () => boolean;
  /** Receives unexpected errors (answered with 500 `INTERNAL_ERROR`). @default console.error */
  onError?: (error: unknown) => void;
}

/** A snapshot as the API returns it: the same fields, timestamps as ISO 8601 strings. */
export interface SessionContextJson extends Omit<SessionContext, 'createdAt' | 'updatedAt'> {
  createdAt: string;
  updatedAt: string;
}

/** Converts a snapshot to its JSON form (fields in a fixed order). */
export function toSessionContextJson(context: SessionContext): SessionContextJson {
  return {
    sessionId: context.sessionId,
    userId: context.userId,
    summary: context.summary,
    goal: context.goal,
    plan: context.plan,
    progress: context.progress,
    createdAt: context.createdAt.toISOString(),
    updatedAt: context.updatedAt.toISOString(),
    version: context.version,
    fields: context.fields ?? null,
  };
}

const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

function notFound(sessionId: string): HttpProblem {
  return new HttpProblem(
    404,
    'NOT_FOUND',
    `Session "${sessionId}" not found: it has no context yet, or it was deleted or expired`,
  );
}

async function readJsonText(c: Context): Promise<string> {
  const type = c.req.header('content-type') ?? '';
  if (!JSON_MEDIA_TYPE.test(type)) {
    throw new HttpProblem(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `Expected a JSON body with "content-type: application/json", got ${type ? `"${type}"` : 'no content-type'}`,
    );
  }
  return c.req.text();
}

/**
 * Builds the HTTP service as a Hono app: the JSON API under `/v1`, health and readiness probes,
 * and the inspector page at `/`. Serve it with `@hono/node-server` (see `startServer`) or test it
 * in-process with `app.request()`.
 *
 * Ownership: writes (`POST …/turns`, `DELETE`) must name the caller in the `x-ctx-user` header;
 * it becomes the owner of a new session and must match the owner of an existing one (else 403).
 * Reads may name a caller (then checked the same way) or omit the header, which reads as an
 * operator (the inspector does that). The header is an ownership check between cooperating
 * agents, not authentication: keep the service on a private network or behind an auth proxy.
 *
 * @example
 * ```ts
 * const store = new SessionContextStore({ repository, extractor, config: { enablePlanning: true } });
 * const app = createServerApp({ store });
 * const response = await app.request('/v1/sessions/s1/turns', {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json', 'x-ctx-user': 'u1' },
 *   body: JSON.stringify({ messages: [{ role: 'user', content: 'Help me plan a migration' }] }),
 * });
 * ```
 */
export function createServerApp(options: ServerAppOptions): Hono {
  const { store } = options;
  const isDraining = options.isDraining ?? (() => false);
  const report = options.onError ?? ((error: unknown) => console.error('[ctx-server]', error));
  const readinessTimeoutMs = options.readinessTimeoutMs ?? 2000;
  const inspector =
    options.inspector === false
      ? null
      : renderInspectorPage(options.inspector === true ? {} : options.inspector);
  const renderDefaults: RenderOptions = store.config.render ?? {};
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const app = new Hono();

  app.use(async (c, next) => {
    await next();
    c.header('x-content-type-options', 'nosniff');
    if (!c.res.headers.has('cache-control')) c.header('cache-control', 'no-store');
    // While draining, clients reconnect (to another instance) instead of reusing this connection.
    if (isDraining()) c.header('connection', 'close');
  });

  app.onError((error, c) => {
    const response = toHttpError(error, report);
    return c.json(response.body, response.status, response.headers);
  });

  app.notFound((c) => {
    const response = toHttpError(
      new HttpProblem(
        404,
        'NOT_FOUND',
        `No route ${c.req.method} ${c.req.path}: see the README of apps/server for the endpoints`,
      ),
      report,
    );
    return c.json(response.body, response.status);
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', async (c) => {
    if (isDraining()) {
      return c.json(
        {
          status: 'draining',
          error: { code: 'SHUTTING_DOWN', message: 'This instance is shutting down' },
        },
        503,
      );
    }
    let timer: NodeJS.Timeout | undefined;
    const probe = store.repository.get(READINESS_PROBE_SESSION_ID);
    probe.catch(() => undefined);
    try {
      await Promise.race([
        probe,
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new ContextError(
                  'STORAGE_UNAVAILABLE',
                  `The storage did not answer within ${readinessTimeoutMs} ms`,
                ),
              ),
            readinessTimeoutMs,
          );
        }),
      ]);
      return c.json({ status: 'ready' });
    } catch (error) {
      const code = ContextError.isInstance(error) ? error.code : 'INTERNAL_ERROR';
      const message = error instanceof Error ? error.message : String(error);
      return c.json({ status: 'unavailable', error: { code, message } }, 503);
    } finally {
      clearTimeout(timer);
    }
  });

  if (inspector) {
    app.get('/', (c) => {
      c.header('content-security-policy', inspector.contentSecurityPolicy);
      c.header('referrer-policy', 'no-referrer');
      return c.html(inspector.html);
    });
  }

  app.get('/v1/sessions', async (c) => {
    const check = new IssueCollector();
    const caller = check.take(() => parseUserHeader(c.req.header(USER_HEADER), false));
    const query = check.take(() => parseListQuery(c.req.query(), caller))!;
    check.assertValid();
    const page = await store.list({
      ...(query.userId === undefined ? {} : { userId: query.userId }),
      ...(query.limit === undefined ? {} : { limit: query.limit }),
      cursor: query.cursor ?? null,
    });
    return c.json({ items: page.items.map(toSessionContextJson), nextCursor: page.nextCursor });
  });

  app.post(
    '/v1/sessions/:id/turns',
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: () => {
        throw new HttpProblem(
          413,
          'PAYLOAD_TOO_LARGE',
          `The body is larger than this server accepts (${maxBodyBytes} bytes): send fewer or shorter messages per turn`,
        );
      },
    }),
    async (c) => {
      if (isDraining()) {
        throw new HttpProblem(
          503,
          'SHUTTING_DOWN',
          'This instance is shutting down: send the turn to another instance',
          true,
        );
      }
      const text = await readJsonText(c);
      const check = new IssueCollector();
      check.take(() => rejectUnknownParams(c.req.query(), ['wait']));
      const wait = check.take(() => parseBooleanParam('wait', c.req.query('wait'), true));
      const userId = check.take(() => parseUserHeader(c.req.header(USER_HEADER), true))!;
      const sessionId = check.take(() => parseSessionId(c.req.param('id')))!;
      const body = check.take(() => parseJsonText(text));
      const messages = body === undefined ? undefined : check.take(() => parseTurnBody(body));
      check.assertValid();
      if (!wait) {
        // Answers once the turn is durably recorded (another user's session is refused first);
        // the fold runs in the background, or on any instance's drain.
        const recorded = await store.schedule({ sessionId, userId, messages: messages! });
        return c.json({ queued: true, turnId: recorded.turnId }, 202);
      }
      const result = await store.update({ sessionId, userId, messages: messages! });
      return c.json({
        context: result.context ? toSessionContextJson(result.context) : null,
        updated: result.updated,
        ...(result.skipped ? { skipped: result.skipped } : {}),
        ...(result.usage ? { usage: result.usage } : {}),
        conflictRetries: result.conflictRetries,
      });
    },
  );

  app.get('/v1/sessions/:id/context', async (c) => {
    const check = new IssueCollector();
    const query = check.take(() => parseContextQuery(c.req.query()))!;
    const userId = check.take(() => parseUserHeader(c.req.header(USER_HEADER), false));
    const sessionId = check.take(() => parseSessionId(c.req.param('id')))!;
    check.assertValid();
    const context = await store.get(sessionId, userId === undefined ? {} : { userId });
    if (!context) throw notFound(sessionId);
    c.header('etag', `"${context.version}"`);
    if (query.format === 'prompt') {
      return c.text(
        renderSessionContext(context, {
          ...renderDefaults,
          // As store.render: the store's fields schema decides which custom fields show, labelled.
          fields: store.fields ?? null,
          ...(query.maxChars === undefined ? {} : { maxChars: query.maxChars }),
        }),
      );
    }
    return c.json({ context: toSessionContextJson(context) });
  });

  app.delete('/v1/sessions/:id', async (c) => {
    const check = new IssueCollector();
    check.take(() => rejectUnknownParams(c.req.query(), []));
    const userId = check.take(() => parseUserHeader(c.req.header(USER_HEADER), true))!;
    const sessionId = check.take(() => parseSessionId(c.req.param('id')))!;
    check.assertValid();
    if (!(await store.delete(sessionId, { userId }))) throw notFound(sessionId);
    return c.body(null, 204);
  });

  return app;
}
