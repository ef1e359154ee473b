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
export {
  type ExtractionFields,
  type FieldMeta,
  type FieldsSchema,
  type FieldValues,
  type InvalidField,
  MAX_FIELDS,
} from './fields.js';
export { createMemoryRepository, type MemoryRepositoryOptions } from './memory-repository.js';
export { UPDATE_MODES, type UpdateMode } from './policy.js';
export {
  type AnySessionContext,
  formatFieldValue,
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
  type JsonValue,
  LIMITS,
  type Message,
  MessageSchema,
  type Role,
  RoleSchema,
  type SessionContext,
  type SessionContextBase,
  SessionContextSchema,
  SessionIdSchema,
  type StoredFields,
  StoredFieldsSchema,
  UserIdSchema,
} from './schema.js';
export {
  type FieldsOf,
  SessionContextStore,
  type SessionContextStoreOptions,
} from './store.js';
export type {
  BackgroundConfig,
  FoldConfig,
  ScheduleOptions,
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
