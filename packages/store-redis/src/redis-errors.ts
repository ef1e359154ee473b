import { type DriverErrorClass, NETWORK_ERROR_CODES } from '@ctx/core/adapter';

// Client-side messages of ioredis (connection gone, offline queue disabled, command timeout,
// cluster without a reachable node) and server replies that mean "not now": a busy script, a
// server loading its data, a cluster being reconfigured, a replica promoted under our feet.
const OUTAGE_MESSAGES = [
  /Connection is closed/i,
  /Stream isn't writeable/i,
  /Command timed out/i,
  /Reached the max retries per request limit/i,
  /None of startup nodes is available/i,
  /Cluster isn't ready/i,
  /^(BUSY|LOADING|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY)\b/,
];

/** True when `error` means that Redis cannot be reached or cannot answer now. */
export function isRedisOutage(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'MaxRetriesPerRequestError') return true;
  const code = (error as Error & { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return true;
  return OUTAGE_MESSAGES.some((pattern) => pattern.test(error.message));
}

function hintFor(message: string): string | undefined {
  if (/^NOPERM|^NOAUTH|^WRONGPASS/.test(message)) {
    return 'the credentials or ACL of the connection do not allow this: check the user, the password and its permissions (the README of @ctx/store-redis lists the commands and the key pattern it needs)';
  }
  if (/^OOM/.test(message)) {
    return 'the server reached maxmemory: free memory, raise maxmemory or shorten the TTL';
  }
  if (/^WRONGTYPE/.test(message)) {
    return 'a key of this prefix holds another type: another application shares the key prefix, choose another keyPrefix';
  }
  if (/^CROSSSLOT|^MOVED|^ASK/.test(message)) {
    return 'the cluster routed the call to the wrong node: pass an ioredis Cluster client, not a client for one node';
  }
  if (/unknown command/i.test(message)) {
    return 'the server lacks a command this adapter needs: use Redis 6 or newer (or a compatible server with Lua scripting)';
  }
  return undefined;
}

/**
 * The Redis driver's `classifyError`: outages (connection refused or lost, command timeout,
 * offline client, BUSY/LOADING/failover replies) are `STORAGE_UNAVAILABLE`; server replies with a
 * known cause (ACL, memory, a foreign key type, a client that is not cluster-aware) are
 * `STORAGE_ERROR` with a hint. Anything else is left to the repository (`STORAGE_ERROR` with its
 * own message).
 */
export function classifyRedisError(error: unknown): DriverErrorClass | undefined {
  if (!(error instanceof Error)) return undefined;
  if (isRedisOutage(error)) {
    return {
      code: 'STORAGE_UNAVAILABLE',
      message: `the server is unreachable or not answering (${error.message}). Check that it is running and reachable; the call can be retried once it is back`,
    };
  }
  const hint = hintFor(error.message);
  return hint === undefined
    ? undefined
    : { code: 'STORAGE_ERROR', message: `${error.message}: ${hint}` };
}
