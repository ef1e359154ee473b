import { ValidationError } from '@ctx/core';

/** True when `error` is Node's (or a bundler's) "module not found" error. */
export function isModuleNotFound(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return true;
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && /Cannot find (?:package|module)/i.test(message);
}

/**
 * Imports an optional peer package. When it (or one of its own peers) is not installed, throws
 * `INVALID_CONFIG` naming the packages to install; any other failure is rethrown as it is.
 */
export async function importOptionalPeer<T>(
  load: () => Promise<T>,
  peer: { packageName: string; install: string; purpose: string },
): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (!isModuleNotFound(error)) throw error;
    const detail = error instanceof Error ? error.message.split('\n', 1)[0] : String(error);
    throw new ValidationError(
      'INVALID_CONFIG',
      `${peer.purpose} needs ${peer.packageName}, which could not be loaded (${detail}): install ${peer.install}, e.g. pnpm add ${peer.install}`,
      { cause: error, issues: [{ path: peer.packageName, message: 'not installed' }] },
    );
  }
}
