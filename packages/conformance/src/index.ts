export {
  type ReadModifyWriteOptions,
  type ReadModifyWriteOutcome,
  raceWrites,
  runReadModifyWriteLoops,
  type WriteRaceOutcome,
} from './concurrency.js';
export { describeContextExtractor } from './extractor-suite.js';
export { trickyFields } from './fields-suite.js';
export { ALL_TRICKY_TEXT, makeLongText, TRICKY_TEXTS, truncateText } from './fixtures.js';
export type {
  ExtractorHarness,
  ProviderScenario,
  RawSnapshot,
  RecordedProviderRequest,
  RepositoryFactoryOptions,
  RepositoryHarness,
} from './harness.js';
export { makeSnapshot, nextVersion, randomId } from './random.js';
export { describeContextRepository } from './repository-suite.js';
