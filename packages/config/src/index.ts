export {
  createExtractorFromEnv,
  DEFAULT_GEMINI_MODEL,
  DEFAULT_OPENAI_MODEL,
  type ExtractorFromEnv,
  type ExtractorFromEnvOptions,
  type ExtractorProvider,
  LOCAL_SERVER_API_KEY,
} from './extractor-from-env.js';
export { createRepositoryFromUrl, type RepositoryFromUrlOptions } from './repository-from-url.js';
export {
  listStoreSchemes,
  registerStoreScheme,
  type StoreScheme,
  type StoreSchemeOptions,
  type StoreUrlParameter,
  type StoreUrlParts,
} from './store-scheme-registry.js';
export {
  type ParsedStoreUrl,
  parseDuration,
  parseStoreUrl,
  redactStoreUrl,
  STORE_URL_SCHEMES,
  type StoreKind,
  type StoreLocations,
  type StoreUrl,
  type StoreUrlOptions,
  type StoreUrlScheme,
} from './store-url.js';
