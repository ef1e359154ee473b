import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Principal, TokenAuth } from './auth.js';

/** The inspector's session cookie. */
export const SESSION_COOKIE = 'ctx_inspector';

/** Options of {@link createInspectorSessions}. */
export interface InspectorSessionOptions {
  /** The tokens; a session stays valid only while its operator token is listed. */
  auth: TokenAuth;
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
  /** The `Set-Cookie` value that signs `principal` in. */
  signIn(c: Context, principal: Principal): string;
  /** The `Set-Cookie` value that removes the cookie. */
  signOut(c: Context): string;
}

const base64url = (buffer: Buffer) => buffer.toString('base64url');

/**
 * Inspector sessions as HMAC-signed cookies: `<expiry>.<principal id>.<signature>`. Nothing is
 * kept on the server, so several instances share sessions through one secret, and removing an
 * operator token from the auth file ends its sessions. The cookie is `HttpOnly` (scripts cannot
 * read it), `SameSite=Strict` (no other site's page can make the browser send it) and `Secure`
 * over HTTPS; it never holds the token.
 */
export function createInspectorSessions(options: InspectorSessionOptions): InspectorSessions {
  const key =
    options.secret === undefined
      ? randomBytes(32)
      : typeof options.secret === 'string'
        ? Buffer.from(options.secret, 'utf8')
        : options.secret;
  const ttlMs = options.ttlMs ?? 12 * 60 * 60 * 1000;
  const operators = new Map(
    options.auth.tokens
      .filter((entry) => entry.principal.role === 'operator')
      .map((entry) => [entry.principal.id, entry.principal]),
  );
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
      const [expiry, id, signature] = value.split('.');
      if (!expiry || !id || !signature || !/^\d{1,15}$/.test(expiry)) return undefined;
      const expected = sign(`${expiry}.${id}`);
      const given = Buffer.from(signature, 'base64url');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      if (Number(expiry) <= Date.now()) return undefined;
      return operators.get(Buffer.from(id, 'base64url').toString('utf8'));
    },
    signIn(c, principal) {
      const expiry = String(Date.now() + ttlMs);
      const id = base64url(Buffer.from(principal.id, 'utf8'));
      const signature = base64url(sign(`${expiry}.${id}`));
      return cookie(c, `${expiry}.${id}.${signature}`, Math.floor(ttlMs / 1000));
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
