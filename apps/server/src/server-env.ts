import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import type { Actor } from './access.js';
import type { Principal } from './auth.js';

/** The Hono environment of the server: what middleware hands to handlers, and the Node request. */
export interface ServerEnv {
  Variables: {
    /** Who makes the request (set by authentication; `anonymous` without auth). */
    principal: Principal;
    /** Who the request acts for (set per route, after the principal's rights are checked). */
    actor: Actor;
    /** The request's id (the `x-request-id` header). */
    requestId: string;
  };
  Bindings: { incoming?: IncomingMessage };
}

/** The client's address as this process sees it (`unknown` in-process, e.g. `app.request()`). */
export function clientAddress(c: Context<ServerEnv>): string {
  return c.env?.incoming?.socket?.remoteAddress ?? 'unknown';
}
