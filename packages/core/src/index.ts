// @ctx/core — what applications use. Backend and model-adapter authors also import
// '@ctx/core/adapter'; tests import '@ctx/core/testing'.
export {
  BackpressureError,
  ContextError,
  type ContextErrorCode,
  ExtractionError,
  type ExtractionFailureReason,
  isRetryableError,
  MAX_RETRY_AFTER_MS,
  OwnershipError,
  StorageError,
  ValidationError,
  type ValidationIssue,
  VersionConflictError,
} from './errors.js';
export type {
  ContextExtractor,
  ExtractionRequest,
  ExtractionResult,
  TokenUsage,
} from './extraction.js';
export type { ToleratedOutput } from './extraction-tolerance.js';
export { createMemoryRepository, type MemoryRepositoryOptions } from './memory-repository.js';
export { UPDATE_MODES, type UpdateMode } from './policy.js';
export {
  formatSessionContext,
  injectSessionContext,
  MIN_RENDER_CHARS,
  type RenderOptions,
  renderSessionContext,
} from './render.js';
export {
  type ContextRepository,
  type DeleteOptions,
  LIST_LIMITS,
  type ListPage,
  type ListQuery,
  type RepositoryCapabilities,
  type SaveOptions,
} from './repository.js';
export {
  assertValidSessionId,
  assertValidSnapshot,
  type ContextDraft,
  ContextDraftSchema,
  LIMITS,
  type Message,
  MessageSchema,
  type Role,
  RoleSchema,
  type SessionContext,
  SessionContextSchema,
  SessionIdSchema,
  UserIdSchema,
} from './schema.js';
export { SessionContextStore } from './store.js';
export type {
  BackgroundConfig,
  FoldConfig,
  SessionContextConfig,
  SessionContextEvent,
  UpdateInput,
  UpdateResult,
} from './store-options.js';
export type {
  LeaseOptions,
  PendingSessionsQuery,
  RecordedTurn,
  RecordTurnResult,
  TurnInput,
  TurnLog,
} from './turn-log.js';
