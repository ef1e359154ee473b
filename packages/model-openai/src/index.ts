export { createOpenAIExtractor, type OpenAIExtractor } from './openai-extractor.js';
export {
  DEFAULT_MAX_OUTPUT_TOKENS,
  DEFAULT_TIMEOUT_MS,
  isReasoningModel,
  type OpenAIExtractorApi,
  type OpenAIExtractorClientOptions,
  type OpenAIExtractorCommonOptions,
  type OpenAIExtractorConnectionOptions,
  type OpenAIExtractorOptions,
  type OpenAIReasoningEffort,
  type OpenAIStructuredOutput,
} from './openai-options.js';
export type { OutputFormat } from './openai-wire.js';
