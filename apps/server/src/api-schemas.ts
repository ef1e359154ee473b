import {
  LIMITS,
  LIST_LIMITS,
  MessageSchema,
  MIN_RENDER_CHARS,
  SessionContextSchema,
  SessionIdSchema,
} from '@ctx/core';
import { decodeListCursor } from '@ctx/core/adapter';
import { createRoute, type RouteConfig } from '@hono/zod-openapi';
import { z } from 'zod';
import { USER_HEADER } from './validation.js';

/** The zod schemas of one route's request parts, validated before its handler runs. */
export interface RequestSchemas {
  params?: z.ZodType;
  query?: z.ZodType;
  headers?: z.ZodType;
  body?: z.ZodType;
}

// ---- request parts ------------------------------------------------------------------------

const integerParam = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/, `expected an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, `expected an integer from ${min} to ${max}`)
        .max(max, `expected an integer from ${min} to ${max}`),
    );

const booleanParam = z
  .enum(['true', 'false', '1', '0'], { message: 'expected true, false, 1 or 0' })
  .transform((value) => value === 'true' || value === '1');

/** `:sessionId` in the path, percent-decoded. */
export const SessionPathSchema = z.strictObject({
  sessionId: SessionIdSchema.meta({
    description:
      'The session id, percent-encoded (encodeURIComponent): 1–256 characters, no control characters',
  }),
});

/** The user header, as documented: the decoding and the per-role rules are in `access.ts`. */
export const UserHeaderSchema = z.object({
  [USER_HEADER]: z.string().optional().meta({
    description:
      'The user the call is made for, UTF-8 percent-encoded (encodeURIComponent). A service token must send it; a user token may (it must then name its own user); an operator token does not.',
  }),
});

/**
 * One message of a turn: the core's `MessageSchema`, strict, so a typo inside a message
 * (`contnet`) is refused instead of dropped.
 */
export const TurnMessageSchema = z.strictObject(MessageSchema.shape);

/** The body of `POST /v1/sessions/:id/turns`. */
export const TurnBodySchema = z.strictObject(
  {
    messages: z
      .array(TurnMessageSchema, {
        error: (issue) =>
          issue.input === undefined
            ? 'required: an array of { role, content }'
            : 'expected an array of { role, content }',
      })
      .min(1, 'a turn needs at least one message')
      .max(LIMITS.messagesMaxCount, `at most ${LIMITS.messagesMaxCount} messages per turn`)
      .meta({ description: 'The messages new since the previous turn' }),
  },
  { error: 'expected a JSON object { "messages": [{ "role", "content" }] }' },
);

/** The query of `POST /v1/sessions/:id/turns`. */
export const TurnQuerySchema = z.strictObject({
  wait: booleanParam.optional().meta({
    description:
      'false: answer 202 once the turn is recorded, fold it in the background (default true)',
  }),
});

/** The query of `GET /v1/sessions/:id/context`. */
export const ContextQuerySchema = z
  .strictObject({
    format: z.enum(['json', 'prompt'], { message: 'expected json or prompt' }).optional(),
    maxChars: integerParam(MIN_RENDER_CHARS, LIMITS.summaryMaxLength * 2).optional(),
  })
  .superRefine((query, context) => {
    if (query.maxChars !== undefined && query.format !== 'prompt') {
      context.addIssue({
        code: 'custom',
        path: ['maxChars'],
        message: 'only applies with format=prompt',
      });
    }
  });

/** The query of `GET /v1/sessions`. */
export const ListQuerySchema = z.strictObject({
  user: SessionContextSchema.shape.userId
    .unwrap()
    .optional()
    .meta({ description: "List this user's sessions" }),
  limit: integerParam(1, LIST_LIMITS.maxLimit).optional(),
  cursor: z
    .string()
    .refine((cursor) => {
      if (cursor === '') return true;
      try {
        decodeListCursor(cursor);
        return true;
      } catch {
        return false;
      }
    }, 'not a cursor from this API: pass back a nextCursor unchanged')
    .optional()
    .meta({ description: 'The nextCursor of the previous page' }),
});

/** The query of `DELETE /v1/sessions/:id`: none. */
export const EmptyQuerySchema = z.strictObject({});

// ---- responses ----------------------------------------------------------------------------

/**
 * A snapshot as the API returns it: the core's `SessionContextSchema` with timestamps as ISO 8601
 * strings. Built from the core schema, so a property added there appears here too.
 */
export const SessionContextJsonSchema = SessionContextSchema.extend({
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  // The core validates stored fields with a refinement (no JSON schema of its own): documented
  // here as what it is on the wire, one JSON object or null.
  fields: z.record(z.string(), z.unknown()).nullable().meta({
    description:
      "Custom fields of the session (the store's `fields` schema), as one JSON object; null when none is set",
  }),
});

/** The body of every error response. */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string().meta({ description: 'Stable machine-readable code: switch on it' }),
    message: z.string(),
    retryable: z.boolean(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    reason: z.string().optional(),
    currentVersion: z.number().int().nullable().optional(),
    requestId: z.string().optional(),
  }),
});

const TurnResultSchema = z.object({
  context: SessionContextJsonSchema.nullable(),
  updated: z.boolean(),
  skipped: z.enum(['no-conversational-content', 'session-deleted']).optional(),
  usage: z.object({ inputTokens: z.number(), outputTokens: z.number() }).optional(),
  conflictRetries: z.number().int(),
});

const QueuedSchema = z.object({ queued: z.literal(true), turnId: z.string() });

const ListPageSchema = z.object({
  items: z.array(SessionContextJsonSchema),
  nextCursor: z.string().nullable(),
});

const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

const errors = (...statuses: number[]) => {
  const descriptions: Record<number, string> = {
    400: 'INVALID_INPUT: `issues` names every bad field',
    401: 'UNAUTHENTICATED: no bearer token, or an unknown one',
    403: 'FORBIDDEN (outside the token’s rights) or OWNERSHIP_MISMATCH (another user’s session)',
    404: 'NOT_FOUND',
    409: 'VERSION_CONFLICT: send the turn again',
    413: 'PAYLOAD_TOO_LARGE',
    415: 'UNSUPPORTED_MEDIA_TYPE',
    429: 'RATE_LIMITED: wait Retry-After seconds',
    502: 'EXTRACTION_FAILED',
    503: 'STORAGE_UNAVAILABLE, SHUTTING_DOWN, or EXTRACTION_FAILED (rate_limit) with Retry-After',
    504: 'EXTRACTION_FAILED (timeout)',
  };
  return Object.fromEntries(
    statuses.map((status) => [status, json(ErrorBodySchema, descriptions[status] ?? 'error')]),
  );
};

const security = [{ bearer: [] }];

// ---- routes -------------------------------------------------------------------------------

/** A route of the JSON API: its OpenAPI definition and the schemas its requests must pass. */
export interface ApiRoute {
  config: RouteConfig;
  schemas: RequestSchemas;
}

function apiRoute(
  config: Omit<RouteConfig, 'request'>,
  schemas: RequestSchemas,
  bodyDescription?: string,
): ApiRoute {
  return {
    schemas,
    config: createRoute({
      ...config,
      request: {
        ...(schemas.params ? { params: schemas.params } : {}),
        ...(schemas.query ? { query: schemas.query } : {}),
        ...(schemas.headers ? { headers: schemas.headers } : {}),
        ...(schemas.body
          ? {
              body: {
                required: true,
                description: bodyDescription,
                content: { 'application/json': { schema: schemas.body } },
              },
            }
          : {}),
      },
    } as RouteConfig),
  };
}

/** `POST /v1/sessions/{sessionId}/turns` */
export const postTurnRoute = apiRoute(
  {
    method: 'post',
    path: '/v1/sessions/{sessionId}/turns',
    summary: 'Update the context from one turn',
    security,
    responses: {
      200: json(TurnResultSchema, 'The turn is folded into the stored context'),
      202: json(QueuedSchema, '?wait=false: the turn is recorded; the fold runs in the background'),
      ...errors(400, 401, 403, 409, 413, 415, 429, 502, 503, 504),
    },
  },
  {
    params: SessionPathSchema,
    query: TurnQuerySchema,
    headers: UserHeaderSchema,
    body: TurnBodySchema,
  },
  'The turn: 1–1000 messages; unknown fields are refused',
);

/** `GET /v1/sessions/{sessionId}/context` */
export const getContextRoute = apiRoute(
  {
    method: 'get',
    path: '/v1/sessions/{sessionId}/context',
    summary: 'Read the stored context (JSON, or the rendered block with format=prompt)',
    security,
    responses: {
      200: {
        description: 'The context; ETag is its version',
        content: {
          'application/json': { schema: z.object({ context: SessionContextJsonSchema }) },
          'text/plain': { schema: z.string() },
        },
      },
      ...errors(400, 401, 403, 404, 429, 503),
    },
  },
  { params: SessionPathSchema, query: ContextQuerySchema, headers: UserHeaderSchema },
);

/** `DELETE /v1/sessions/{sessionId}` */
export const deleteSessionRoute = apiRoute(
  {
    method: 'delete',
    path: '/v1/sessions/{sessionId}',
    summary: 'Delete a session, its history and its pending turns',
    security,
    responses: { 204: { description: 'Deleted' }, ...errors(400, 401, 403, 404, 429, 503) },
  },
  { params: SessionPathSchema, query: EmptyQuerySchema, headers: UserHeaderSchema },
);

/** `GET /v1/sessions` */
export const listSessionsRoute = apiRoute(
  {
    method: 'get',
    path: '/v1/sessions',
    summary: 'List sessions, most recently updated first',
    security,
    responses: { 200: json(ListPageSchema, 'One page'), ...errors(400, 401, 403, 429, 503) },
  },
  { query: ListQuerySchema, headers: UserHeaderSchema },
);
