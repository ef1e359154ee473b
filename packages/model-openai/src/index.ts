export { createOpenAIExtractor, type OpenAIExtractor } from './openai-extractor.js';
export {
  DEFAULT_MAX_OUTPUT_TOKENS,
  DEFAULT_TIMEOUT_MS,
  isReasoningModel,
  type OpenAIClientLike,
  type OpenAIExtractorApi,
  type OpenAIExtractorClientOptions,
  type OpenAIExtractorCommonOptions,
  type OpenAIExtractorConnectionOptions,
  type OpenAIExtractorOptions,
  type OpenAIPendingRequest,
  type OpenAIReasoningEffort,
  type OpenAIRequestOptions,
  type OpenAIStructuredOutput,
} from './openai-options.js';
export type { ChatRequestBody, OutputFormat, ResponsesRequestBody } from './openai-wire.js';
