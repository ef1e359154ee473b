export {
  ContextError,
  type ContextErrorCode,
  ExtractionError,
  type ExtractionFailureReason,
  isRetryableError,
  NETWORK_ERROR_CODES,
  OwnershipError,
  parseRetryAfterHeaders,
  StorageError,
  ValidationError,
  type ValidationIssue,
  VersionConflictError,
} from './errors.js';
export {
  buildExtractionPrompt,
  type ContextExtractor,
  EXTRACTION_SCHEMA_NAME,
  type ExtractionPrompt,
  type ExtractionRequest,
  type ExtractionResult,
  getExtractionJsonSchema,
  type JsonSchema,
  parseExtractionOutput,
  type TokenUsage,
} from './extraction.js';
export { createMemoryRepository, type MemoryRepositoryOptions } from './memory-repository.js';
export {
  applyUpdatePolicy,
  hasConversationalContent,
  messagesForExtraction,
  type SnapshotContent,
  UPDATE_MODES,
  type UpdateMode,
} from './policy.js';
export {
  formatSessionContext,
  injectSessionContext,
  MIN_RENDER_CHARS,
  type RenderOptions,
  renderSessionContext,
} from './render.js';
export {
  assertValidSave,
  type ContextRepository,
  cloneSnapshot,
  compareForList,
  type DeleteOptions,
  decodeListCursor,
  encodeListCursor,
  isAfterCursor,
  LIST_LIMITS,
  type ListCursor,
  type ListPage,
  type ListQuery,
  type NormalizedListQuery,
  normalizeListQuery,
  type RepositoryCapabilities,
  type SaveOptions,
  toListPage,
} from './repository.js';
export {
  assertValidSessionId,
  assertValidSnapshot,
  type ContextDraft,
  ContextDraftSchema,
  isWellFormedText,
  LIMITS,
  type Message,
  MessageSchema,
  parseOrThrow,
  type Role,
  RoleSchema,
  type SessionContext,
  SessionContextSchema,
  SessionIdSchema,
  UserIdSchema,
} from './schema.js';
export {
  createScriptedExtractor,
  type ScriptedExtractor,
  type ScriptedExtractorOptions,
  type ScriptedReply,
} from './scripted-extractor.js';
export {
  type BackgroundConfig,
  type SessionContextConfig,
  type SessionContextEvent,
  SessionContextStore,
  type UpdateInput,
  type UpdateResult,
} from './store.js';
export { neutralizeTags, RESERVED_TAGS, SESSION_CONTEXT_TAG, toSingleLine } from './text.js';
