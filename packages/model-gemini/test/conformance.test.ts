import { describeContextExtractor } from '@ctx/conformance';
import { createGeminiExtractor } from '../src/index.js';
import { startGeminiServer, toRecordedProviderRequest } from './helpers/gemini-server.js';

const server = await startGeminiServer();

describeContextExtractor({
  name: 'gemini (generateContent)',
  createExtractor: (options) =>
    createGeminiExtractor({
      apiKey: 'test-key',
      baseUrl: server.baseUrl,
      model: 'gemini-test-flash-lite',
      ...options,
    }),
  enqueue: (...scenarios) => server.enqueue(...scenarios),
  requests: () => server.requests().map(toRecordedProviderRequest),
  reset: () => server.reset(),
  teardown: () => server.close(),
});
