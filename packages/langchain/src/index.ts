// @ctx/langchain — a LangChain.js `createAgent` middleware that keeps a ctx session context.

export {
  lastTurn,
  type ToSessionMessagesOptions,
  toSessionMessages,
} from './langchain-messages.js';
export {
  createLangChainMiddleware,
  type LangChainMiddlewareOptions,
  type SessionContextRuntime,
  sessionContextSchema,
} from './langchain-middleware.js';
