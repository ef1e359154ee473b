import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SessionContextStore, ValidationError } from '@ctx/core';
import { serve } from '@hono/node-server';
import { createServerApp, type ServerAppOptions } from './app.js';
import { type AuthSource, isLoopbackHost, type TokenAuth } from './auth.js';
import { type DrainLoop, type DrainLoopOptions, startDrainLoop } from './drain-loop.js';

/** Options of {@link startServer}: the app's options plus where to listen. */
export interface StartServerOptions extends Omit<ServerAppOptions, 'isDraining' | 'auth'> {
  /**
   * Bearer-token authentication, or `'none'` to serve without it on purpose. Left out, the
   * server serves without authentication on a loopback host only: any other host throws
   * `INVALID_CONFIG` instead of listening. A source (see `createReloadableAuth`) lets the tokens
   * change while the server runs.
   */
  auth?: TokenAuth | AuthSource | 'none';
  /** The interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** The port; 0 picks a free one (read it back from `url`). @default 8787 */
  port?: number;
  /**
   * Run a drain loop (see {@link startDrainLoop}) that folds the turns other instances left
   * pending; it is stopped first on shutdown. `false` runs none.
   * @default false
   */
  drain?: Omit<DrainLoopOptions, 'store'> | false;
}

/** A listening service. */
export interface RunningServer {
  /** Where it listens, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** The underlying Node HTTP server. */
  server: Server;
  /**
   * Graceful shutdown, idempotent: reports not-ready and refuses new turns, stops the drain loop
   * (aborting its current drain: the turns stay pending for another instance), stops accepting
   * connections, waits for in-flight requests, waits for queued (`?wait=false`) updates with
   * `store.flush()`, then closes the store's repository.
   */
  shutdown(): Promise<void>;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    // Keep-alive connections that turn idle after close() would otherwise hold it open.
    const sweeper = setInterval(() => server.closeIdleConnections(), 100);
    server.close((error) => {
      clearInterval(sweeper);
      if (error) reject(error);
      else resolve();
    });
    server.closeIdleConnections();
  });
}

/**
 * Serves {@link createServerApp} over HTTP with `@hono/node-server` and wires graceful shutdown.
 * The caller installs signal handlers (see `main.ts`) and owns the store.
 *
 * @example
 * ```ts
 * const running = await startServer({ store, port: 0 });
 * console.log(running.url);
 * process.once('SIGTERM', () => void running.shutdown().then(() => process.exit(0)));
 * ```
 */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const store: SessionContextStore = options.store;
  const hostname = options.host ?? '127.0.0.1';
  if (options.auth === undefined && !isLoopbackHost(hostname)) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Refusing to listen on ${hostname} without authentication: pass auth (tokens), or auth: 'none' to serve without it on purpose`,
    );
  }
  let draining = false;
  const { auth, ...rest } = options;
  const app = createServerApp({
    ...rest,
    ...(auth === undefined || auth === 'none' ? {} : { auth }),
    isDraining: () => draining,
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const created = serve({ fetch: app.fetch, hostname, port: options.port ?? 8787 }, () =>
      resolve(created as Server),
    ) as Server;
    created.once('error', reject);
  });
  const drainLoop: DrainLoop | undefined = options.drain
    ? startDrainLoop({ ...options.drain, store })
    : undefined;
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    server,
    shutdown() {
      stopping ??= (async () => {
        draining = true;
        await drainLoop?.stop();
        await closeServer(server);
        await store.flush();
        await store.repository.close();
      })();
      return stopping;
    },
  };
}
