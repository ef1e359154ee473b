import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UserIdSchema, ValidationError, type ValidationIssue } from '@ctx/core';
import { z } from 'zod';

/** The roles a token can have. */
export const TOKEN_ROLES = ['user', 'service', 'operator'] as const;
/**
 * - `user`: acts only as its own `userId`.
 * - `service`: a trusted backend that acts for any user it names in `x-ctx-user`.
 * - `operator`: reads every session and signs in to the inspector; writes nothing.
 */
export type TokenRole = (typeof TOKEN_ROLES)[number];

/**
 * Who makes a request. `anonymous` is every caller of a server without authentication
 * (`CTX_AUTH=none`, or loopback without `CTX_AUTH_FILE`): it is trusted to name any user.
 */
export interface Principal {
  role: TokenRole | 'anonymous';
  /** The user a `user` token is bound to. */
  userId?: string;
  /**
   * A stable label for logs and rate limits: `user:alice#1a2b3c4d`, `service:billing`,
   * `operator:#9f8e7d6c` (a name from the auth file, or the first 8 hex digits of the token's
   * SHA-256 — never the token).
   */
  id: string;
}

/** One token of the auth file, as the server keeps it: a SHA-256 digest, never the token. */
export interface TokenEntry {
  digest: Buffer;
  principal: Principal;
}

/** Token authentication: the principals a bearer token can stand for. */
export interface TokenAuth {
  tokens: readonly TokenEntry[];
}

/**
 * Where a request finds the tokens in force. Each request reads it once, when it is
 * authenticated, so a token set swapped in later (see `createReloadableAuth`) applies from the
 * next request on and never changes the principal of a request already running.
 */
export interface AuthSource {
  /** The tokens in force now. */
  current(): TokenAuth;
}

/** `auth` itself when it is a source, else a source that always answers the fixed `auth`. */
export function toAuthSource(auth: TokenAuth | AuthSource): AuthSource {
  return 'current' in auth ? auth : { current: () => auth };
}

const HEX_DIGEST = /^[0-9a-fA-F]{64}$/;

const TokenEntrySchema = z
  .strictObject({
    token: z.string().min(1, 'must not be empty').optional(),
    sha256: z.string().regex(HEX_DIGEST, 'must be 64 hex digits (SHA-256 of the token)').optional(),
    role: z.enum(TOKEN_ROLES),
    userId: UserIdSchema.optional(),
    name: z.string().min(1).max(100).optional(),
  })
  .superRefine((entry, context) => {
    if ((entry.token === undefined) === (entry.sha256 === undefined)) {
      context.addIssue({ code: 'custom', message: 'give exactly one of "token" and "sha256"' });
    }
    if (entry.role === 'user' && entry.userId === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['userId'],
        message: 'required for role "user": the only user this token acts as',
      });
    }
    if (entry.role !== 'user' && entry.userId !== undefined) {
      context.addIssue({
        code: 'custom',
        path: ['userId'],
        message: `only a "user" token is bound to a user; a "${entry.role}" token has none`,
      });
    }
  });

/** The JSON of `CTX_AUTH_FILE`. */
export const AuthFileSchema = z.strictObject({
  tokens: z.array(TokenEntrySchema).min(1, 'list at least one token'),
});

/** SHA-256 of a token, as the auth file's `sha256` holds it (hex). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Says where the JSON breaks without quoting it: newer V8 versions put an excerpt of the text in
 * `JSON.parse`'s message, and in an auth file that excerpt can be a token.
 */
function describeJsonError(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  if (/unexpected end of JSON input/i.test(message)) return 'not valid JSON (it ends too early)';
  const position = /at position (\d+)/.exec(message)?.[1];
  if (position === undefined) return 'not valid JSON';
  const before = text.slice(0, Number(position)).split('\n');
  return `not valid JSON (at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1})`;
}

function invalidConfig(source: string, issues: ValidationIssue[]): ValidationError {
  return new ValidationError(
    'INVALID_CONFIG',
    `Invalid auth file ${source}: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`,
    { issues },
  );
}

/**
 * Parses the auth file's JSON text. Throws `INVALID_CONFIG` naming every bad entry: unknown
 * fields, both or neither of `token`/`sha256`, a `user` token without `userId`, the same token
 * listed twice.
 */
export function parseAuthFile(text: string, source = 'CTX_AUTH_FILE'): TokenAuth {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw invalidConfig(source, [{ path: '(root)', message: describeJsonError(text, error) }]);
  }
  const result = AuthFileSchema.safeParse(json);
  if (!result.success) {
    throw invalidConfig(
      source,
      result.error.issues.flatMap((issue) => {
        const path = issue.path.map(String).join('.');
        // A misspelt field is named where it is: `tokens.0.rol`.
        if (issue.code === 'unrecognized_keys') {
          return issue.keys.map((key) => ({
            path: path ? `${path}.${key}` : key,
            message: 'unknown field: expected token or sha256, role, userId, name',
          }));
        }
        return [{ path: path || '(root)', message: issue.message }];
      }),
    );
  }
  const seen = new Map<string, number>();
  const issues: ValidationIssue[] = [];
  const tokens = result.data.tokens.map((entry, index): TokenEntry => {
    const hex = (entry.sha256 ?? hashToken(entry.token ?? '')).toLowerCase();
    const first = seen.get(hex);
    if (first !== undefined) {
      issues.push({ path: `tokens.${index}`, message: `the same token as tokens.${first}` });
    }
    seen.set(hex, index);
    const label = entry.name ?? `#${hex.slice(0, 8)}`;
    const id =
      entry.role === 'user'
        ? `user:${entry.userId}${entry.name ? `(${entry.name})` : `#${hex.slice(0, 8)}`}`
        : `${entry.role}:${label}`;
    return {
      digest: Buffer.from(hex, 'hex'),
      principal: {
        role: entry.role,
        id,
        ...(entry.userId === undefined ? {} : { userId: entry.userId }),
      },
    };
  });
  if (issues.length > 0) throw invalidConfig(source, issues);
  return { tokens };
}

/** Reads and parses the auth file at `path` (see {@link parseAuthFile}). */
export function loadAuthFile(path: string): TokenAuth {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Cannot read the auth file CTX_AUTH_FILE=${path}: ${(error as Error).message}`,
      { issues: [{ path: 'CTX_AUTH_FILE', message: (error as Error).message }] },
    );
  }
  return parseAuthFile(text, `CTX_AUTH_FILE=${path}`);
}

/**
 * Finds the principal of a token. The token is hashed and compared with every entry's digest by
 * `timingSafeEqual`, without stopping at a match, so the time taken says nothing about which
 * token (or how much of one) matched.
 */
export function findPrincipal(auth: TokenAuth, token: string): Principal | undefined {
  return findTokenEntry(auth, token)?.principal;
}

/** Like {@link findPrincipal}, but answers the whole entry (its digest too). */
export function findTokenEntry(auth: TokenAuth, token: string): TokenEntry | undefined {
  const digest = createHash('sha256').update(token, 'utf8').digest();
  let found: TokenEntry | undefined;
  for (const entry of auth.tokens) {
    if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry;
  }
  return found;
}

/** The outcome of reading the `Authorization` header. */
export type BearerResult =
  | { kind: 'missing' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'ok'; principal: Principal };

/** Reads `Authorization: Bearer <token>` (scheme case-insensitive) and finds its principal. */
export function authenticateBearer(auth: TokenAuth, header: string | undefined): BearerResult {
  if (header === undefined || header.trim() === '') return { kind: 'missing' };
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  if (!match?.[1]) {
    return { kind: 'invalid', reason: 'the Authorization header must be "Bearer <token>"' };
  }
  const principal = findPrincipal(auth, match[1]);
  return principal
    ? { kind: 'ok', principal }
    : { kind: 'invalid', reason: 'the token is not valid' };
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return (
    bare === 'localhost' ||
    bare === '::1' ||
    bare === '::ffff:127.0.0.1' ||
    /^127(?:\.\d{1,3}){3}$/.test(bare)
  );
}
