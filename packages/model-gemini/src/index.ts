export {
  createGeminiExtractor,
  GEMINI_DEFAULT_API_VERSION,
  GEMINI_DEFAULT_MAX_OUTPUT_TOKENS,
  GEMINI_DEFAULT_TIMEOUT_MS,
  type GeminiClientLike,
  type GeminiExtractorApiKeyOptions,
  type GeminiExtractorClientOptions,
  type GeminiExtractorCommonOptions,
  type GeminiExtractorOptions,
} from './gemini-extractor.js';
