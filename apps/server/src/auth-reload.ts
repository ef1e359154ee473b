import { ContextError } from '@ctx/core';
import { type AuthSource, loadAuthFile, TOKEN_ROLES, type TokenAuth } from './auth.js';

/** `3 token(s) (1 user, 1 service, 1 operator)`: how many tokens of each role `auth` holds. */
export function describeTokens(auth: TokenAuth): string {
  const counts = TOKEN_ROLES.map(
    (role) => `${auth.tokens.filter((entry) => entry.principal.role === role).length} ${role}`,
  );
  return `${auth.tokens.length} token(s) (${counts.join(', ')})`;
}

/** The outcome of {@link ReloadableAuth.reload}; `message` is one log line, free of tokens. */
export type AuthReloadResult =
  | {
      ok: true;
      /** The tokens now in force. */
      auth: TokenAuth;
      /** Tokens in the new file that the previous one did not have. */
      added: number;
      /** Tokens of the previous file that the new one no longer has: refused from now on. */
      removed: number;
      message: string;
    }
  | {
      ok: false;
      /** Why the file was refused (`INVALID_CONFIG`); the previous tokens stay in force. */
      error: ContextError;
      message: string;
    };

/** Tokens read from a file, read again on demand. */
export interface ReloadableAuth extends AuthSource {
  /**
   * Reads the file again. A valid file replaces the tokens in one step (requests already
   * authenticated keep their principal; the next request sees the new set); an invalid one
   * (unreadable, not JSON, an entry the schema refuses, a duplicate token) changes nothing.
   * Never throws.
   */
  reload(): AuthReloadResult;
}

/** Options of {@link createReloadableAuth}. */
export interface ReloadableAuthOptions {
  /** The auth file (`CTX_AUTH_FILE`). */
  path: string;
  /** Reads and checks the file. @default loadAuthFile */
  load?: (path: string) => TokenAuth;
}

const hexDigests = (auth: TokenAuth) =>
  new Set(auth.tokens.map((entry) => entry.digest.toString('hex')));

/**
 * Loads the auth file at `path` (throwing `INVALID_CONFIG` as `loadAuthFile` does, so a bad file
 * still stops the start) and keeps its tokens until `reload()` swaps in the file's new contents.
 *
 * @example
 * ```ts
 * const auth = createReloadableAuth({ path: '/etc/ctx/tokens.json' });
 * const running = await startServer({ store, auth });
 * process.on('SIGHUP', () => console.log(auth.reload().message));
 * ```
 */
export function createReloadableAuth(options: ReloadableAuthOptions): ReloadableAuth {
  const load = options.load ?? loadAuthFile;
  let current = load(options.path);
  return {
    current: () => current,
    reload() {
      let next: TokenAuth;
      try {
        next = load(options.path);
      } catch (error) {
        const problem = ContextError.isInstance(error)
          ? error
          : new ContextError(
              'INVALID_CONFIG',
              error instanceof Error ? error.message : String(error),
              { cause: error },
            );
        return {
          ok: false,
          error: problem,
          message:
            `auth file not reloaded, the previous ${describeTokens(current)} stay in force: ${problem.code}: ${problem.message}`.replace(
              /\s*\n\s*/g,
              ' ',
            ),
        };
      }
      const before = hexDigests(current);
      const after = hexDigests(next);
      const added = [...after].filter((digest) => !before.has(digest)).length;
      const removed = [...before].filter((digest) => !after.has(digest)).length;
      current = next;
      return {
        ok: true,
        auth: next,
        added,
        removed,
        message: `auth file reloaded: ${describeTokens(next)}; ${added} added, ${removed} removed`,
      };
    },
  };
}
