import type { Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { type AuthSource, findTokenEntry } from './auth.js';
import { type InspectorPage, renderSignInPage } from './inspector.js';
import { type InspectorSessions, isSameOrigin } from './inspector-auth.js';
import { clientAddress, type ServerEnv } from './server-env.js';

/** What {@link mountInspector} needs from the app. */
export interface InspectorRoutesOptions {
  /** The inspector page (served at `/` once signed in, or always without auth). */
  page: InspectorPage;
  /** The tokens in force; without them the page needs no sign-in. */
  auth: AuthSource | undefined;
  /** The sign-in cookies (with `auth`). */
  sessions: InspectorSessions | null;
  /** Records a refused sign-in as an audit event. */
  auditRefusal: (c: Context<ServerEnv>, status: number, code: string, message: string) => void;
  /** Takes one request from `key`'s rate-limit bucket; throws 429 when it is empty. */
  rateLimit: (key: string) => void;
}

function html(c: Context<ServerEnv>, page: InspectorPage, status: 200 | 401 | 403 = 200): Response {
  c.header('content-security-policy', page.contentSecurityPolicy);
  // same-origin, not no-referrer: Chromium sends `Origin: null` on form posts under no-referrer,
  // and the sign-in checks the origin.
  c.header('referrer-policy', 'same-origin');
  c.header('x-frame-options', 'DENY');
  return c.html(page.html, status);
}

/**
 * Serves the inspector: `GET /` (the page, or its sign-in form until an operator signs in), and
 * with `auth` the sign-in and sign-out posts. A sign-in posts the operator token in the form body
 * and gets the signed cookie; posts from another origin, wrong tokens and non-operator tokens are
 * refused (each an audit event).
 */
export function mountInspector(app: Hono<ServerEnv>, options: InspectorRoutesOptions): void {
  const { page, auth, sessions, auditRefusal, rateLimit } = options;
  app.get('/', (c) => {
    if (!sessions || sessions.principal(c)) return html(c, page);
    return html(c, renderSignInPage());
  });
  if (!auth || !sessions) return;

  const refuse = (c: Context<ServerEnv>, status: 401 | 403, code: string, message: string) => {
    auditRefusal(c, status, code, message);
    return html(c, renderSignInPage({ message, action: 'sign-in' }), status);
  };
  app.post('/inspector/sign-in', bodyLimit({ maxSize: 4096 }), async (c) => {
    if (!isSameOrigin(c)) {
      return refuse(c, 403, 'FORBIDDEN', 'Sign in from the inspector page of this server.');
    }
    rateLimit(`sign-in@${clientAddress(c)}`);
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const token = typeof form.token === 'string' ? form.token.trim() : '';
    const entry = token ? findTokenEntry(auth.current(), token) : undefined;
    if (!entry) return refuse(c, 401, 'UNAUTHENTICATED', 'That token is not valid.');
    c.set('principal', entry.principal);
    if (entry.principal.role !== 'operator') {
      return refuse(c, 403, 'FORBIDDEN', 'Only an operator token opens the inspector.');
    }
    c.header('set-cookie', sessions.signIn(c, entry));
    return c.redirect('../', 303);
  });
  app.post('/inspector/sign-out', (c) => {
    if (!isSameOrigin(c)) {
      return refuse(c, 403, 'FORBIDDEN', 'Sign out from the inspector page of this server.');
    }
    c.header('set-cookie', sessions.signOut(c));
    return c.redirect('../', 303);
  });
}
