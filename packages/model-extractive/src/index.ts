export {
  createExtractiveExtractor,
  type ExtractiveExtractorOptions,
} from './extractive-extractor.js';
