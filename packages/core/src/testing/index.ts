// @ctx/core/testing — test doubles and fixtures for tests of apps and adapters.
export {
  createScriptedExtractor,
  type ScriptedExtractor,
  type ScriptedExtractorOptions,
  type ScriptedReply,
  type ScriptedResult,
} from '../scripted-extractor.js';
