// @ctx/openai-agents — ctx session contexts for OpenAI Agents SDK agents.
export {
  type AgentInstructions,
  type ContextInstructionsOptions,
  createContextInstructions,
  type SessionContextRunContext,
  type SessionRef,
} from './agents-instructions.js';
export {
  isAssistantMessage,
  type ToSessionMessagesOptions,
  toSessionMessages,
} from './agents-messages.js';
export { type ContextSessionOptions, createContextSession } from './agents-session.js';
