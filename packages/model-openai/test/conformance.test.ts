import { describeContextExtractor, type ExtractorHarness } from '@ctx/conformance';
import { createOpenAIExtractor, type OpenAIExtractorApi } from '../src/index.js';
import { startOpenAITestServer } from './openai-test-server.js';

async function harnessFor(api: OpenAIExtractorApi, name: string): Promise<ExtractorHarness> {
  const server = await startOpenAITestServer();
  return {
    name,
    createExtractor: (options = {}) =>
      createOpenAIExtractor({
        apiKey: 'sk-conformance',
        baseURL: server.baseURL,
        model: 'gpt-4.1-mini',
        api,
        ...options,
      }),
    enqueue: server.enqueue,
    requests: server.requests,
    reset: server.reset,
    teardown: server.close,
  };
}

describeContextExtractor(await harnessFor('responses', 'openai (Responses API)'));
describeContextExtractor(await harnessFor('chat', 'openai (Chat Completions)'));
