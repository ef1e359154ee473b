import { ValidationError, type ValidationIssue } from '@ctx/core';
import type { Context } from 'hono';
import type { z } from 'zod';
import type { RequestSchemas } from './api-schemas.js';

/** The request header that names the user a call is made for. */
export const USER_HEADER = 'x-ctx-user';

/** Where a problem was found; the first segment of an issue's path. */
export type RequestPart = 'path' | 'query' | 'header' | 'body';

/** One `INVALID_INPUT` error listing every problem of a request. */
export function invalidRequest(issues: ValidationIssue[]): ValidationError {
  return new ValidationError(
    'INVALID_INPUT',
    `Invalid request: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`,
    { issues },
  );
}

/**
 * Turns zod issues into `part.field` issues. An unknown key becomes one issue per key at its own
 * path (`body.messages.0.contnet`, `query.verbose`), so a typo is named where it is.
 */
export function issuesAt(
  error: z.ZodError,
  part: RequestPart,
  known?: string[],
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const issue of error.issues) {
    const path = [part, ...issue.path.map(String)].join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        issues.push({
          path: `${path}.${key}`,
          message:
            part === 'query'
              ? known && known.length > 0
                ? `unknown parameter: expected ${known.join(', ')}`
                : 'unknown parameter: this endpoint takes none'
              : 'unknown field: check its spelling (unknown fields are refused)',
        });
      }
    } else {
      issues.push({ path, message: issue.message });
    }
  }
  return issues;
}

/** The query as Hono's validator sees it: one string per name, an array when a name repeats. */
function queryOf(c: Context): Record<string, string | string[]> {
  return Object.fromEntries(
    Object.entries(c.req.queries()).map(([name, values]) => [
      name,
      values.length === 1 ? (values[0] as string) : values,
    ]),
  );
}

function shapeKeys(schema: z.ZodType): string[] | undefined {
  const shape = (schema as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : undefined;
}

/**
 * Runs every schema of a route against the request and returns all the problems found: the
 * path, the query, the headers and the JSON body (syntax, then shape). A 400 lists them all, so
 * a client fixes its request in one round trip.
 */
export async function collectRequestIssues(
  c: Context,
  schemas: RequestSchemas,
): Promise<ValidationIssue[]> {
  const issues: ValidationIssue[] = [];
  const check = (schema: z.ZodType | undefined, value: unknown, part: RequestPart) => {
    if (!schema) return;
    const result = schema.safeParse(value);
    if (!result.success) issues.push(...issuesAt(result.error, part, shapeKeys(schema)));
  };
  check(schemas.params, c.req.param(), 'path');
  check(schemas.query, queryOf(c), 'query');
  check(schemas.headers, Object.fromEntries(c.req.raw.headers), 'header');
  if (schemas.body) {
    const text = await c.req.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      issues.push({ path: 'body', message: `not valid JSON (${(error as Error).message})` });
      return issues;
    }
    check(schemas.body, json, 'body');
  }
  return issues;
}

/**
 * Fails the request with one 400 listing every problem: `extra` (found before the schemas ran,
 * e.g. a missing user header) plus whatever the route's schemas find.
 */
export async function failValidation(
  c: Context,
  schemas: RequestSchemas,
  extra: ValidationIssue[] = [],
): Promise<never> {
  const issues = [...extra, ...(await collectRequestIssues(c, schemas))];
  throw invalidRequest(
    issues.length > 0 ? issues : [{ path: '(request)', message: 'invalid request' }],
  );
}

/**
 * Refuses a path with a malformed percent-escape (`%ZZ`, `%E9` alone): decoding it would guess,
 * and Hono would use it literally, so `/v1/sessions/a%ZZ` and `/v1/sessions/a%25ZZ` would name
 * one session.
 */
export function assertWellFormedPath(url: string): void {
  const path = new URL(url).pathname;
  for (const segment of path.split('/')) {
    try {
      decodeURIComponent(segment);
    } catch {
      throw invalidRequest([
        {
          path: 'path',
          message: `malformed percent-escape in "${segment}": encode ids with encodeURIComponent (a "%" is "%25")`,
        },
      ]);
    }
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes the `x-ctx-user` header. The user id is UTF-8, sent percent-encoded (what
 * `encodeURIComponent` produces: `Jos%C3%A9`); raw UTF-8 bytes (`José` typed into curl) are
 * accepted too. Node hands header bytes over as Latin-1 characters, so they are turned back into
 * bytes and decoded as UTF-8; bytes that are not UTF-8 (a client that sent Latin-1) and malformed
 * percent-escapes are refused rather than guessed.
 */
export function decodeUserHeader(value: string): string {
  const invalid = (message: string) => invalidRequest([{ path: `header.${USER_HEADER}`, message }]);
  let text = value;
  if (/[^\x00-\x7f]/.test(value)) {
    if (/[^\x00-\xff]/.test(value)) throw invalid('not a header value');
    try {
      text = UTF8.decode(Buffer.from(value, 'latin1'));
    } catch {
      throw invalid(
        'not valid UTF-8: send the user id percent-encoded (encodeURIComponent("José") is "Jos%C3%A9")',
      );
    }
  }
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid(
      'malformed percent-escape: send the user id percent-encoded with encodeURIComponent (a "%" is "%25")',
    );
  }
}
