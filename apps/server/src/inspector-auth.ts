import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { AuthSource, Principal, TokenAuth, TokenEntry } from './auth.js';

/** The inspector's session cookie. */
export const SESSION_COOKIE = 'ctx_inspector';

/** Options of {@link createInspectorSessions}. */
export interface InspectorSessionOptions {
  /**
   * The tokens in force; a session stays valid only while the operator token it was signed in
   * with is among them (checked on every request, so a reload that removes it ends the session).
   */
  auth: AuthSource;
  /**
   * Key of the cookie's HMAC. Give every instance behind one address the same secret
   * (`CTX_SESSION_SECRET`) so a session signed in on one is valid on all.
   * @default 32 random bytes per process (sessions end when it restarts)
   */
  secret?: string | Buffer;
  /** How long a sign-in lasts. @default 43_200_000 (12 hours) */
  ttlMs?: number;
  /**
   * The cookie's `Secure` attribute: `'auto'` sets it when the request came over HTTPS (the URL,
   * or `X-Forwarded-Proto: https` from a TLS-terminating proxy).
   * @default 'auto'
   */
  secure?: boolean | 'auto';
}

/** Signed, stateless inspector sessions. */
export interface InspectorSessions {
  /** The principal of a valid session cookie on this request, if any. */
  principal(c: Context): Principal | undefined;
  /** The `Set-Cookie` value that signs in the operator token `entry`. */
  signIn(c: Context, entry: TokenEntry): string;
  /** The `Set-Cookie` value that removes the cookie. */
  signOut(c: Context): string;
}

const base64url = (buffer: Buffer) => buffer.toString('base64url');

/**
 * The fingerprint that binds a cookie to one token: the first 16 bytes of a SHA-256 of the
 * token's SHA-256 digest (base64url), so the cookie names the token without holding it or the
 * digest the auth file may list.
 */
export function tokenFingerprint(entry: TokenEntry): string {
  const digest = createHash('sha256').update('ctx-inspector-session:').update(entry.digest);
  return base64url(digest.digest().subarray(0, 16));
}

// The operators of one token set by fingerprint, computed once per set (a reload makes a new one).
const operatorsBySet = new WeakMap<TokenAuth, Map<string, Principal>>();
function operatorsOf(auth: TokenAuth): Map<string, Principal> {
  let operators = operatorsBySet.get(auth);
  if (!operators) {
    operators = new Map(
      auth.tokens
        .filter((entry) => entry.principal.role === 'operator')
        .map((entry) => [tokenFingerprint(entry), entry.principal]),
    );
    operatorsBySet.set(auth, operators);
  }
  return operators;
}

/**
 * Inspector sessions as HMAC-signed cookies: `<expiry>.<token fingerprint>.<signature>`. Nothing
 * is kept on the server, so several instances share sessions through one secret. A cookie names
 * the operator token it was signed in with (see {@link tokenFingerprint}) and is honoured only
 * while that token is in the tokens in force: removing the token from the auth file (and
 * reloading it) ends its sessions, even when a new token takes over the same name. The cookie is
 * `HttpOnly` (scripts cannot read it), `SameSite=Strict` (no other site's page can make the
 * browser send it) and `Secure` over HTTPS; it never holds the token.
 */
export function createInspectorSessions(options: InspectorSessionOptions): InspectorSessions {
  const key =
    options.secret === undefined
      ? randomBytes(32)
      : typeof options.secret === 'string'
        ? Buffer.from(options.secret, 'utf8')
        : options.secret;
  const ttlMs = options.ttlMs ?? 12 * 60 * 60 * 1000;
  const sign = (payload: string) => createHmac('sha256', key).update(payload).digest();
  const isSecure = (c: Context) => {
    if (options.secure !== undefined && options.secure !== 'auto') return options.secure;
    if (new URL(c.req.url).protocol === 'https:') return true;
    return c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';
  };
  const cookie = (c: Context, value: string, maxAgeSeconds: number) =>
    [
      `${SESSION_COOKIE}=${value}`,
      'Path=/',
      'HttpOnly',
      'SameSite=Strict',
      `Max-Age=${maxAgeSeconds}`,
      ...(isSecure(c) ? ['Secure'] : []),
    ].join('; ');

  return {
    principal(c) {
      const value = getCookie(c, SESSION_COOKIE);
      if (!value) return undefined;
      const [expiry, fingerprint, signature] = value.split('.');
      if (!expiry || !fingerprint || !signature || !/^\d{1,15}$/.test(expiry)) return undefined;
      const expected = sign(`${expiry}.${fingerprint}`);
      const given = Buffer.from(signature, 'base64url');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      if (Number(expiry) <= Date.now()) return undefined;
      return operatorsOf(options.auth.current()).get(fingerprint);
    },
    signIn(c, entry) {
      const expiry = String(Date.now() + ttlMs);
      const fingerprint = tokenFingerprint(entry);
      const signature = base64url(sign(`${expiry}.${fingerprint}`));
      return cookie(c, `${expiry}.${fingerprint}.${signature}`, Math.floor(ttlMs / 1000));
    },
    signOut(c) {
      return cookie(c, '', 0);
    },
  };
}

/**
 * True when a state-changing request comes from a page of this server: its `Origin` names this
 * host (as the client addressed it: `Host`, or `X-Forwarded-Host` behind a proxy), or, without
 * an `Origin` (or with `Origin: null`), `Sec-Fetch-Site` says same-origin. Browsers send one of them on every form post, so a
 * post from another site's page, or one with neither header, is refused.
 */
export function isSameOrigin(c: Context): boolean {
  const origin = c.req.header('origin');
  const host =
    c.req.header('x-forwarded-host')?.split(',')[0]?.trim() ??
    c.req.header('host') ??
    new URL(c.req.url).host;
  // `Origin: null` comes from privacy settings (a no-referrer policy) and sandboxed frames alike:
  // only the browser-set Sec-Fetch-Site can tell them apart.
  if (origin !== undefined && origin !== 'null') {
    try {
      return new URL(origin).host === host.toLowerCase();
    } catch {
      return false;
    }
  }
  return c.req.header('sec-fetch-site') === 'same-origin';
}
