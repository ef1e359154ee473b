import { pathToFileURL } from 'node:url';
import { createExtractorFromEnv, createRepositoryFromUrl, redactStoreUrl } from '@ctx/config';
import { ContextError, ExtractionError, SessionContextStore } from '@ctx/core';
import { isLoopbackHost } from './auth.js';
import { createReloadableAuth, describeTokens, type ReloadableAuth } from './auth-reload.js';
import { readServerSettings } from './env.js';
import { startServer } from './server.js';

const log = (text: string) => console.log(`[ctx-server] ${text}`);
const logError = (text: string) => console.error(`[ctx-server] ${text}`);

/**
 * Starts the service from the environment (see the README for the variables) and stops it
 * gracefully on SIGTERM or SIGINT: exit code 0 once queued updates are flushed and storage is
 * closed, 1 when that takes longer than `CTX_SHUTDOWN_TIMEOUT_MS` or fails. With
 * `CTX_AUTH_FILE`, SIGHUP reads the auth file again (see `createReloadableAuth`).
 */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const settings = readServerSettings(env);
  const auth: ReloadableAuth | 'none' | undefined =
    settings.auth === undefined || settings.auth === 'none'
      ? settings.auth
      : createReloadableAuth({ path: settings.auth.file });
  if (typeof auth === 'object') {
    // Installed before anything slow, so an early SIGHUP reloads instead of ending the process.
    process.on('SIGHUP', () => {
      const result = auth.reload();
      (result.ok ? log : logError)(`SIGHUP: ${result.message}`);
    });
  }
  const model = await createExtractorFromEnv(env);
  const repository = await createRepositoryFromUrl(settings.storeUrl);
  let signalled = false;
  const store = new SessionContextStore({
    repository,
    extractor: model.extractor,
    config: {
      enablePlanning: settings.planning,
      maxConflictRetries: settings.maxConflictRetries,
      ...(settings.instructions ? { instructions: settings.instructions } : {}),
      onEvent(event) {
        if (event.type === 'failed' && event.background && !event.willRetry) {
          // The drain loop's fold cut short by the shutdown: its turns stay pending, nothing failed.
          const { error } = event;
          if (signalled && ExtractionError.isInstance(error) && error.reason === 'aborted') return;
          logError(
            `background fold of session "${event.sessionId}" failed (${event.error.code}): ${event.error.message}; its turns stay recorded for the next update or drain`,
          );
        } else if (event.type === 'messages-dropped') {
          logError(
            `session "${event.sessionId}": ${event.count} message(s) dropped (${event.reason})`,
          );
        }
      },
    },
  });
  const storeDescription = redactStoreUrl(settings.storeUrl);
  let running: Awaited<ReturnType<typeof startServer>>;
  try {
    running = await startServer({
      store,
      host: settings.host,
      port: settings.port,
      maxBodyBytes: settings.maxBodyBytes,
      ...(auth === undefined ? {} : { auth }),
      rateLimit: settings.rateLimitPerMinute > 0 && {
        perMinute: settings.rateLimitPerMinute,
        ...(settings.rateLimitBurst === undefined ? {} : { burst: settings.rateLimitBurst }),
      },
      corsOrigins: settings.corsOrigins,
      inspectorSessions: {
        secure: settings.cookieSecure,
        ...(settings.sessionSecret === undefined ? {} : { secret: settings.sessionSecret }),
      },
      inspector: settings.inspector
        ? { description: `store ${storeDescription} · model ${model.description}` }
        : false,
      drain: settings.drainIntervalMs > 0 && {
        intervalMs: settings.drainIntervalMs,
        olderThanMs: settings.drainOlderThanMs,
        onFolded: ({ sessions, turns, durationMs }) =>
          log(
            `drain: folded ${turns} turn(s) of ${sessions} session(s) left pending, in ${durationMs} ms`,
          ),
        onError: (error) =>
          logError(
            `drain failed (${ContextError.isInstance(error) ? error.code : 'INTERNAL_ERROR'}): ${error instanceof Error ? error.message : String(error)}; trying again in ${settings.drainIntervalMs} ms`,
          ),
      },
    });
  } catch (error) {
    // The port may be taken: release the storage connection we opened before giving up.
    await repository.close();
    throw error;
  }
  const drain =
    settings.drainIntervalMs > 0
      ? `every ${settings.drainIntervalMs} ms, turns pending ${settings.drainOlderThanMs} ms or more`
      : 'off';
  const authDescription =
    typeof auth === 'object'
      ? describeTokens(auth.current())
      : auth === 'none'
        ? 'none (CTX_AUTH=none)'
        : 'none (loopback only)';
  log(
    `listening on ${running.url} (store: ${storeDescription}; model: ${model.description}; planning: ${settings.planning ? 'on' : 'off'}; inspector: ${settings.inspector ? 'on' : 'off'}; auth: ${authDescription}; drain: ${drain})`,
  );
  if (auth === 'none' && !isLoopbackHost(settings.host)) {
    logError(
      `warning: no authentication on ${settings.host} (CTX_AUTH=none): anyone who reaches this port can read, write and delete every session`,
    );
  }

  const stop = (signal: NodeJS.Signals) => {
    if (signalled) {
      logError(`${signal} again: exiting now without waiting for queued updates`);
      process.exit(1);
    }
    signalled = true;
    log(
      `${signal}: shutting down (new turns refused, drain loop stopped, queued updates flushed, storage closed)`,
    );
    const timer = setTimeout(() => {
      logError(`shutdown took longer than ${settings.shutdownTimeoutMs} ms: exiting`);
      process.exit(1);
    }, settings.shutdownTimeoutMs);
    running.shutdown().then(
      () => {
        clearTimeout(timer);
        log('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        clearTimeout(timer);
        logError(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    const detail = ContextError.isInstance(error)
      ? `${error.code}: ${error.message}`
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error);
    logError(`could not start: ${detail}`);
    process.exit(1);
  });
}
