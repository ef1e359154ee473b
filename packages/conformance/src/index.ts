export type {
  ExtractorHarness,
  ProviderScenario,
  RawSnapshot,
  RecordedProviderRequest,
  RepositoryFactoryOptions,
  RepositoryHarness,
} from './harness.js';
