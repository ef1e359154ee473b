import {
  ContextError,
  type RenderOptions,
  renderSessionContext,
  type SessionContext,
  type SessionContextStore,
} from '@ctx/core';
import { OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import type { z } from 'zod';
import { type Access, listedUser, resolveActor } from './access.js';
import {
  type ApiRoute,
  type ContextQuerySchema,
  deleteSessionRoute,
  getContextRoute,
  type ListQuerySchema,
  listSessionsRoute,
  postTurnRoute,
  type SessionPathSchema,
  type TurnBodySchema,
  type TurnQuerySchema,
} from './api-schemas.js';
import { type AuditEvent, logAuditEvent } from './audit.js';
import {
  type AuthSource,
  authenticateBearer,
  type Principal,
  type TokenAuth,
  toAuthSource,
} from './auth.js';
import { HttpProblem, toHttpError } from './http-errors.js';
import { type InspectorPageOptions, renderInspectorPage } from './inspector.js';
import { createInspectorSessions, type InspectorSessionOptions } from './inspector-auth.js';
import { mountInspector } from './inspector-routes.js';
import { createRateLimiter } from './rate-limit.js';
import { clientAddress, type ServerEnv } from './server-env.js';
import { assertWellFormedPath, failValidation, USER_HEADER } from './validation.js';

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
   * Bearer-token authentication (see `loadAuthFile`). Without it every caller is trusted: the
   * `x-ctx-user` header names the user, a read without it sees every session, and the inspector
   * needs no sign-in — only for a server on a loopback address or a private network.
   *
   * A fixed token set, or a source read once per request (see `createReloadableAuth`): tokens
   * removed from it are refused from the next request on, and so are inspector sign-ins made
   * with a removed operator token.
   */
  auth?: TokenAuth | AuthSource;
  /**
   * Serve the inspector page at `GET /`. `false` turns it off; an object sets its options. With
   * `auth`, it asks for an operator token first.
   * @default true
   */
  inspector?: boolean | InspectorPageOptions;
  /** The inspector's sign-in cookie: HMAC secret, lifetime, `Secure` attribute. */
  inspectorSessions?: Omit<InspectorSessionOptions, 'auth'>;
  /**
   * Requests per minute per principal (a token; without auth, a client address), as a token
   * bucket of `burst` requests (default: `perMinute`). Over it: 429 `RATE_LIMITED` with
   * `Retry-After`. `false` turns limiting off.
   * @default false
   */
  rateLimit?: { perMinute: number; burst?: number } | false;
  /**
   * Origins a browser page may call the API from (`https://app.example.com`). Empty: no CORS
   * headers at all, so browsers keep other sites' pages out.
   * @default []
   */
  corsOrigins?: readonly string[];
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
  onError?: (error: unknown, request: { requestId: string }) => void;
  /**
   * Receives an event for every refused request (400, 401, 403, 413, 415, 429).
   * @default one JSON line on stdout
   */
  onAudit?: (event: AuditEvent) => void;
}

/** A snapshot as the API returns it: the same fields, timestamps as ISO 8601 strings. */
export type SessionContextJson = Omit<SessionContext, 'createdAt' | 'updatedAt'> & {
  createdAt: string;
  updatedAt: string;
};

/**
 * Converts a snapshot to its JSON form: every property of the snapshot as it is (so properties
 * added to the snapshot appear without a change here), timestamps as ISO 8601 strings.
 */
export function toSessionContextJson(context: SessionContext): SessionContextJson {
  return {
    ...context,
    createdAt: context.createdAt.toISOString(),
    updatedAt: context.updatedAt.toISOString(),
    fields: context.fields ?? null,
  };
}

const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const ANONYMOUS: Principal = { role: 'anonymous', id: 'anonymous' };
/** Statuses that count as a refused request (an audit event each). */
const REFUSED = new Set([400, 401, 403, 405, 413, 415, 429]);

function notFound(sessionId: string): HttpProblem {
  return new HttpProblem(
    404,
    'NOT_FOUND',
    `Session "${sessionId}" not found: it has no context yet, or it was deleted or expired`,
  );
}

// The validated parts of a request (the route configs are typed loosely, so name them here).
const valid = <T extends z.ZodType>(c: Context, target: 'param' | 'query' | 'json') =>
  (c.req.valid as (target: string) => unknown)(target) as z.output<T>;

/**
 * Builds the HTTP service as a Hono app: the JSON API under `/v1`, its OpenAPI document at
 * `/openapi.json`, health and readiness probes, and the inspector page at `/`. Serve it with
 * `@hono/node-server` (see `startServer`) or test it in-process with `app.request()`.
 *
 * With `auth`, every `/v1` request carries `Authorization: Bearer <token>`; the token's role
 * decides what it may do (see `resolveActor`). Without it, `x-ctx-user` names the caller and is
 * trusted: keep such a server on loopback or a private network.
 *
 * @example
 * ```ts
 * const store = new SessionContextStore({ repository, extractor, config: { enablePlanning: true } });
 * const app = createServerApp({ store, auth: loadAuthFile('/etc/ctx/tokens.json') });
 * const response = await app.request('/v1/sessions/s1/turns', {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json', authorization: `Bearer ${aliceToken}` },
 *   body: JSON.stringify({ messages: [{ role: 'user', content: 'Help me plan a migration' }] }),
 * });
 * ```
 */
export function createServerApp(options: ServerAppOptions): OpenAPIHono<ServerEnv> {
  const { store } = options;
  const auth = options.auth === undefined ? undefined : toAuthSource(options.auth);
  const isDraining = options.isDraining ?? (() => false);
  const report =
    options.onError ??
    ((error: unknown, request: { requestId: string }) =>
      console.error(`[ctx-server] request ${request.requestId}:`, error));
  const audit = options.onAudit ?? logAuditEvent;
  const readinessTimeoutMs = options.readinessTimeoutMs ?? 2000;
  const inspectorOptions =
    options.inspector === false
      ? null
      : options.inspector === true
        ? {}
        : (options.inspector ?? {});
  const inspector = inspectorOptions
    ? renderInspectorPage({ ...inspectorOptions, signOut: auth !== undefined })
    : null;
  const sessions = auth ? createInspectorSessions({ ...options.inspectorSessions, auth }) : null;
  const limiter = options.rateLimit ? createRateLimiter(options.rateLimit) : null;
  const renderDefaults: RenderOptions = store.config.render ?? {};
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const app = new OpenAPIHono<ServerEnv>();

  const auditRefusal = (c: Context<ServerEnv>, status: number, code: string, message: string) => {
    if (!REFUSED.has(status)) return;
    audit({
      type: 'audit',
      event: 'request.refused',
      time: new Date().toISOString(),
      requestId: c.get('requestId'),
      status,
      code,
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      principal: c.get('principal')?.id ?? null,
      client: clientAddress(c),
      message,
    });
  };

  const rateLimit = (key: string) => {
    const decision = limiter?.take(key);
    if (decision && !decision.allowed) {
      throw new HttpProblem(
        429,
        'RATE_LIMITED',
        `Too many requests: wait ${decision.retryAfterSeconds} s (Retry-After) before sending more`,
        true,
        { 'retry-after': String(decision.retryAfterSeconds) },
      );
    }
  };

  app.use(requestId({ limitLength: 128 }));
  app.use(async (c, next) => {
    await next();
    c.header('x-content-type-options', 'nosniff');
    if (!c.res.headers.has('cache-control')) c.header('cache-control', 'no-store');
    // While draining, clients reconnect (to another instance) instead of reusing this connection.
    if (isDraining()) c.header('connection', 'close');
  });
  if (options.corsOrigins && options.corsOrigins.length > 0) {
    const origins = [...options.corsOrigins];
    const corsHandler = cors({
      origin: origins,
      allowMethods: ['GET', 'POST', 'DELETE'],
      allowHeaders: ['authorization', 'content-type', USER_HEADER, 'x-request-id'],
      exposeHeaders: ['etag', 'retry-after', 'x-request-id'],
      maxAge: 600,
    });
    app.use('/v1/*', corsHandler);
    app.use('/openapi.json', corsHandler);
  }
  app.use(async (c, next) => {
    assertWellFormedPath(c.req.url);
    await next();
  });

  app.onError((error, c) => {
    const response = toHttpError(error, (unexpected) =>
      report(unexpected, { requestId: c.get('requestId') }),
    );
    response.body.error.requestId = c.get('requestId');
    auditRefusal(c, response.status, response.body.error.code, response.body.error.message);
    return c.json(response.body, response.status, response.headers);
  });

  app.notFound((c) => {
    const response = toHttpError(
      new HttpProblem(
        404,
        'NOT_FOUND',
        `No route ${c.req.method} ${c.req.path}: see the README of apps/server for the endpoints`,
      ),
      () => undefined,
    );
    response.body.error.requestId = c.get('requestId');
    return c.json(response.body, response.status);
  });

  // ---- authentication of the JSON API --------------------------------------------------------

  app.use('/v1/*', async (c, next) => {
    if (!auth) {
      c.set('principal', ANONYMOUS);
      rateLimit(`anonymous@${clientAddress(c)}`);
      return next();
    }
    // Read once: a reload while this request runs does not change who makes it.
    let result = authenticateBearer(auth.current(), c.req.header('authorization'));
    // The inspector reads with its sign-in cookie; it never writes, so only reads accept it.
    if (result.kind === 'missing' && (c.req.method === 'GET' || c.req.method === 'HEAD')) {
      const principal = sessions?.principal(c);
      if (principal) result = { kind: 'ok', principal };
    }
    if (result.kind !== 'ok') {
      // Failed attempts count against the client's address: guessing tokens is throttled too.
      rateLimit(`unauthenticated@${clientAddress(c)}`);
      const missing = result.kind === 'missing';
      throw new HttpProblem(
        401,
        'UNAUTHENTICATED',
        result.kind === 'missing'
          ? 'Authentication required: send "Authorization: Bearer <token>"'
          : `Authentication failed: ${result.reason}`,
        false,
        {
          'www-authenticate': missing
            ? 'Bearer realm="ctx"'
            : 'Bearer realm="ctx", error="invalid_token"',
        },
      );
    }
    c.set('principal', result.principal);
    rateLimit(result.principal.id);
    return next();
  });

  // ---- probes and the API description --------------------------------------------------------

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

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description:
      'A token of CTX_AUTH_FILE. Without authentication configured (loopback, or CTX_AUTH=none) no token is needed.',
  });
  let openApiDocument: unknown;
  app.get('/openapi.json', (c) => {
    openApiDocument ??= app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: {
        title: 'ctx server',
        version: '1',
        description:
          'Session contexts of agent conversations: post each turn, read the rendered block for the next system prompt.',
      },
    });
    return c.json(openApiDocument);
  });

  // ---- the inspector -------------------------------------------------------------------------

  if (inspector) {
    mountInspector(app, { page: inspector, auth, sessions, auditRefusal, rateLimit });
  }

  // ---- the JSON API --------------------------------------------------------------------------

  const actorFor =
    (route: ApiRoute, access: Access): MiddlewareHandler<ServerEnv> =>
    async (c, next) => {
      const actor = resolveActor(c.get('principal'), c.req.header(USER_HEADER), access);
      if (actor.kind === 'invalid') await failValidation(c, route.schemas, actor.issues);
      c.set('actor', actor);
      await next();
    };

  const requireJsonBody =
    (route: ApiRoute): MiddlewareHandler<ServerEnv> =>
    async (c, next) => {
      const type = c.req.header('content-type') ?? '';
      if (!JSON_MEDIA_TYPE.test(type)) {
        throw new HttpProblem(
          415,
          'UNSUPPORTED_MEDIA_TYPE',
          `Expected a JSON body with "content-type: application/json", got ${type ? `"${type}"` : 'no content-type'}`,
        );
      }
      try {
        JSON.parse(await c.req.text());
      } catch {
        await failValidation(c, route.schemas);
      }
      await next();
    };

  const register = (
    route: ApiRoute,
    middleware: MiddlewareHandler<ServerEnv>[],
    handler: (c: Context<ServerEnv>) => Promise<Response>,
  ) => {
    const config = { ...route.config, middleware } as RouteConfig;
    // A failing part fails the request with every problem of every part (one round trip).
    const hook = async (result: { success: boolean }, c: Context<ServerEnv>) => {
      if (!result.success) await failValidation(c, route.schemas);
    };
    (app.openapi as (...args: unknown[]) => unknown)(config, handler, hook);
  };

  register(listSessionsRoute, [actorFor(listSessionsRoute, 'read')], async (c) => {
    const query = valid<typeof ListQuerySchema>(c, 'query');
    const userId = listedUser(c.get('actor'), query.user);
    const page = await store.list({
      ...(userId === undefined ? {} : { userId }),
      ...(query.limit === undefined ? {} : { limit: query.limit }),
      cursor: query.cursor ? query.cursor : null,
    });
    return c.json({ items: page.items.map(toSessionContextJson), nextCursor: page.nextCursor });
  });

  register(
    postTurnRoute,
    [
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
      async (_c, next) => {
        if (isDraining()) {
          throw new HttpProblem(
            503,
            'SHUTTING_DOWN',
            'This instance is shutting down: send the turn to another instance',
            true,
          );
        }
        await next();
      },
      requireJsonBody(postTurnRoute),
      actorFor(postTurnRoute, 'write'),
    ],
    async (c) => {
      const { sessionId } = valid<typeof SessionPathSchema>(c, 'param');
      const { wait } = valid<typeof TurnQuerySchema>(c, 'query');
      const { messages } = valid<typeof TurnBodySchema>(c, 'json');
      const actor = c.get('actor');
      const userId = actor.kind === 'user' ? actor.userId : undefined;
      const input = { sessionId, messages, ...(userId === undefined ? {} : { userId }) };
      if (wait === false) {
        // Answers once the turn is durably recorded (another user's session is refused first);
        // the fold runs in the background, or on any instance's drain.
        const recorded = await store.schedule(input);
        return c.json({ queued: true, turnId: recorded.turnId }, 202);
      }
      const result = await store.update(input);
      return c.json({
        context: result.context ? toSessionContextJson(result.context) : null,
        updated: result.updated,
        ...(result.skipped ? { skipped: result.skipped } : {}),
        ...(result.usage ? { usage: result.usage } : {}),
        conflictRetries: result.conflictRetries,
      });
    },
  );

  register(getContextRoute, [actorFor(getContextRoute, 'read')], async (c) => {
    const { sessionId } = valid<typeof SessionPathSchema>(c, 'param');
    const query = valid<typeof ContextQuerySchema>(c, 'query');
    const actor = c.get('actor');
    const context = await store.get(
      sessionId,
      actor.kind === 'user' ? { userId: actor.userId } : {},
    );
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

  register(deleteSessionRoute, [actorFor(deleteSessionRoute, 'write')], async (c) => {
    const { sessionId } = valid<typeof SessionPathSchema>(c, 'param');
    const actor = c.get('actor');
    const deleted = await store.delete(
      sessionId,
      actor.kind === 'user' ? { userId: actor.userId } : {},
    );
    if (!deleted) throw notFound(sessionId);
    return c.body(null, 204);
  });

  return app;
}
