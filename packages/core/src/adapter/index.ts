// @ctx/core/adapter — what backend and model-adapter authors use. Applications import '@ctx/core'.

export { NETWORK_ERROR_CODES, parseRetryAfterHeaders } from '../errors.js';
export {
  buildExtractionPrompt,
  EXTRACTION_SCHEMA_NAME,
  type ExtractionPrompt,
  getExtractionJsonSchema,
  type JsonSchema,
  parseExtractionOutput,
} from '../extraction.js';
export { isEmptyOutputValue, type ToleratedOutput } from '../extraction-tolerance.js';
export {
  applyFieldsPolicy,
  type CompiledFields,
  compileFields,
  type ExtractionFields,
  type FieldDefinition,
  readFields,
} from '../fields.js';
export {
  applyUpdatePolicy,
  hasConversationalContent,
  messagesForExtraction,
  type SnapshotContent,
} from '../policy.js';
export {
  assertValidSave,
  cloneSnapshot,
  compareForList,
  decodeListCursor,
  encodeListCursor,
  isAfterCursor,
  LIST_LIMITS,
  type ListCursor,
  type NormalizedListQuery,
  normalizeListQuery,
  toListPage,
} from '../repository.js';
export {
  assertValidSessionId,
  assertValidSnapshot,
  canonicalFields,
  isWellFormedText,
  parseOrThrow,
  storedFieldsProblem,
} from '../schema.js';
export { neutralizeTags, RESERVED_TAGS, SESSION_CONTEXT_TAG, toSingleLine } from '../text.js';
export { isTokenCount, toTokenUsage } from '../token-usage.js';
export {
  type Awaitable,
  type ContextDriver,
  DRIVER_SPEC_VERSION,
  type DriverErrorClass,
  type DriverHistoryRequest,
  type DriverLeaseRequest,
  type DriverPendingSessionsRequest,
  type DriverPurgeRequest,
  type DriverReadRequest,
  type DriverRecordTurnRequest,
  type DriverRecordTurnResult,
  type DriverRemoveRequest,
  type DriverRemoveResult,
  type DriverScanRequest,
  type DriverTurn,
  type DriverWriteRequest,
  type DriverWriteResult,
} from './driver.js';
export {
  createDriverRepository,
  type DriverRepository,
  type MigrateMethod,
} from './driver-repository.js';
export { assertIntegrationOptions, type IntegrationOptions } from './integration-options.js';
export {
  assertValidTableName,
  DEFAULT_TABLE_NAME,
  DEFAULT_TOMBSTONE_RETENTION_MS,
  invalidOption,
  type RepositoryOptions,
  type RepositorySettings,
  resolveRepositorySettings,
} from './repository-settings.js';
export { cutText, sliceAtCodePoint, toStorableText } from './storable-text.js';
