// @ctx/ai-sdk — session context for the Vercel AI SDK: a language model middleware that injects
// the block before a call and records the turn after it, and the message conversion it uses.
export {
  createSessionContextMiddleware,
  DEFAULT_TOOL_CALL_FOLD_DELAY_MS,
  PROVIDER_OPTIONS_KEY,
  type SessionContextMiddleware,
  type SessionContextMiddlewareErrorInfo,
  type SessionContextMiddlewareOptions,
  type SessionContextMiddlewareStore,
  type SessionContextProviderOptions,
} from './session-context-middleware.js';
export {
  type AnyModelMessage,
  DEFAULT_MAX_TOOL_CHARS,
  type ToSessionMessagesOptions,
  toSessionMessages,
} from './session-messages.js';
