import {
  type ContextExtractor,
  type ContextRepository,
  ExtractionError,
  SessionContextStore,
} from '@ctx/core';

/**
 * The extractor of the store behind `ctx pending` and `ctx discard`. Reading and discarding
 * pending turns never asks a model, so these commands do not read the model settings: an operator
 * unblocking a session whose model misbehaves must not depend on that model's configuration, its
 * keys or its optional packages. Should the store ever call it, it fails loudly instead of folding.
 */
const noModel: ContextExtractor = {
  extract() {
    return Promise.reject(
      new ExtractionError(
        'unknown',
        'ctx pending and ctx discard never fold turns, so they have no model: this store was asked to extract (a bug in @ctx/cli)',
        { retryable: false },
      ),
    );
  },
};

/**
 * A {@link SessionContextStore} over `repository` for reading and discarding pending turns, never
 * for folding them. Close it before the repository (closing it leaves the repository open).
 */
export function createTurnStore(repository: ContextRepository): SessionContextStore {
  return new SessionContextStore({ repository, extractor: noModel });
}
