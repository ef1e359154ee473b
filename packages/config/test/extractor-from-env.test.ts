import { ContextError, ExtractionError, type ExtractionRequest } from '@ctx/core';
import type { OpenAIExtractor } from '@ctx/model-openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startGeminiServer } from '../../model-gemini/test/helpers/gemini-server.js';
import { startOpenAITestServer } from '../../model-openai/test/openai-test-server.js';
import {
  createExtractorFromEnv,
  DEFAULT_GEMINI_MODEL,
  DEFAULT_OPENAI_MODEL,
  LOCAL_SERVER_API_KEY,
} from '../src/index.js';

const request: ExtractionRequest = {
  previous: null,
  messages: [
    { role: 'user', content: 'I want to plan a trip to Lisbon in May.' },
    { role: 'assistant', content: 'Great, let us start with flights and a hotel.' },
  ],
  planning: false,
};

async function configError(env: Record<string, string | undefined>): Promise<Error> {
  const error = await createExtractorFromEnv(env).catch((caught: unknown) => caught);
  expect(ContextError.hasCode(error, 'INVALID_CONFIG')).toBe(true);
  return error as Error;
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('createExtractorFromEnv: choosing', () => {
  it('falls back to the extractive extractor, and says how to get a model', async () => {
    const chosen = await createExtractorFromEnv({});
    expect(chosen).toMatchObject({ provider: 'extractive', model: null });
    expect(chosen.description).toBe(
      'extractive (no model: set OPENAI_API_KEY or GEMINI_API_KEY for real summaries)',
    );
    const result = await chosen.extractor.extract(request);
    expect(result.draft.summary).toContain('Lisbon');
  });

  it('treats empty and blank variables as unset', async () => {
    const chosen = await createExtractorFromEnv({
      OPENAI_API_KEY: '',
      OPENAI_BASE_URL: '  ',
      GEMINI_API_KEY: '',
      CTX_MODEL: ' ',
    });
    expect(chosen.provider).toBe('extractive');
  });

  it('picks OpenAI with the Responses API and a cheap default model from OPENAI_API_KEY', async () => {
    const chosen = await createExtractorFromEnv({ OPENAI_API_KEY: 'sk-test' });
    expect(chosen).toMatchObject({ provider: 'openai', model: DEFAULT_OPENAI_MODEL });
    expect((chosen.extractor as OpenAIExtractor).api).toBe('responses');
    expect(chosen.description).toBe(`OpenAI ${DEFAULT_OPENAI_MODEL} (Responses API)`);
    expect(chosen.description).not.toContain('sk-test');
  });

  it('takes the model from OPENAI_MODEL', async () => {
    const chosen = await createExtractorFromEnv({
      OPENAI_API_KEY: 'sk-test',
      OPENAI_MODEL: 'gpt-5-nano',
    });
    expect(chosen.model).toBe('gpt-5-nano');
    expect((chosen.extractor as OpenAIExtractor).model).toBe('gpt-5-nano');
  });

  it('treats OPENAI_BASE_URL alone as a local server: Chat Completions', async () => {
    const chosen = await createExtractorFromEnv({
      OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
      OPENAI_MODEL: 'qwen2.5:7b',
    });
    expect(chosen).toMatchObject({ provider: 'openai', model: 'qwen2.5:7b' });
    expect((chosen.extractor as OpenAIExtractor).api).toBe('chat');
    expect(chosen.description).toBe(
      'OpenAI qwen2.5:7b via http://127.0.0.1:11434/v1 (Chat Completions API)',
    );
  });

  it('lets CTX_OPENAI_API choose the endpoint', async () => {
    const local = await createExtractorFromEnv({
      OPENAI_BASE_URL: 'http://127.0.0.1:8000/v1',
      CTX_OPENAI_API: 'responses',
    });
    expect((local.extractor as OpenAIExtractor).api).toBe('responses');
    const hosted = await createExtractorFromEnv({ OPENAI_API_KEY: 'sk', CTX_OPENAI_API: 'chat' });
    expect((hosted.extractor as OpenAIExtractor).api).toBe('chat');
  });

  it('keeps the Responses API when OPENAI_BASE_URL is OpenAI itself', async () => {
    const chosen = await createExtractorFromEnv({
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: 'https://api.openai.com/v1',
    });
    expect((chosen.extractor as OpenAIExtractor).api).toBe('responses');
  });

  it('picks Gemini from GEMINI_API_KEY or GOOGLE_API_KEY, with GEMINI_MODEL or a default', async () => {
    expect(await createExtractorFromEnv({ GEMINI_API_KEY: 'g' })).toMatchObject({
      provider: 'gemini',
      model: DEFAULT_GEMINI_MODEL,
      description: `Gemini ${DEFAULT_GEMINI_MODEL}`,
    });
    expect(
      await createExtractorFromEnv({ GOOGLE_API_KEY: 'g', GEMINI_MODEL: 'gemini-2.5-flash' }),
    ).toMatchObject({ provider: 'gemini', model: 'gemini-2.5-flash' });
  });

  it('prefers OpenAI when both providers have keys', async () => {
    const chosen = await createExtractorFromEnv({ OPENAI_API_KEY: 'sk', GEMINI_API_KEY: 'g' });
    expect(chosen.provider).toBe('openai');
  });

  it('follows CTX_MODEL with a provider prefix', async () => {
    const both = { OPENAI_API_KEY: 'sk', GEMINI_API_KEY: 'g' };
    expect(
      await createExtractorFromEnv({ ...both, CTX_MODEL: 'gemini:gemini-2.5-flash-lite' }),
    ).toMatchObject({ provider: 'gemini', model: 'gemini-2.5-flash-lite' });
    expect(
      await createExtractorFromEnv({ ...both, CTX_MODEL: 'openai:gpt-4.1-nano' }),
    ).toMatchObject({ provider: 'openai', model: 'gpt-4.1-nano' });
    expect(
      await createExtractorFromEnv({ ...both, CTX_MODEL: 'gemini', GEMINI_MODEL: 'gemini-x' }),
    ).toMatchObject({ provider: 'gemini', model: 'gemini-x' });
    expect(await createExtractorFromEnv({ ...both, CTX_MODEL: 'openai' })).toMatchObject({
      provider: 'openai',
      model: DEFAULT_OPENAI_MODEL,
    });
  });

  it('follows CTX_MODEL=extractive even when keys are set', async () => {
    const chosen = await createExtractorFromEnv({ OPENAI_API_KEY: 'sk', CTX_MODEL: 'extractive' });
    expect(chosen).toMatchObject({
      provider: 'extractive',
      model: null,
      description: 'extractive (CTX_MODEL=extractive)',
    });
  });

  it('routes a bare CTX_MODEL to the provider that has credentials', async () => {
    expect(
      await createExtractorFromEnv({
        OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
        CTX_MODEL: 'llama3.1:8b',
      }),
    ).toMatchObject({ provider: 'openai', model: 'llama3.1:8b' });
    expect(
      await createExtractorFromEnv({ GEMINI_API_KEY: 'g', CTX_MODEL: 'gemini-2.5-flash' }),
    ).toMatchObject({ provider: 'gemini', model: 'gemini-2.5-flash' });
    expect(
      await createExtractorFromEnv({
        OPENAI_API_KEY: 'sk',
        GEMINI_API_KEY: 'g',
        CTX_MODEL: 'gemini-2.5-flash',
      }),
    ).toMatchObject({ provider: 'gemini' });
    expect(
      await createExtractorFromEnv({
        OPENAI_API_KEY: 'sk',
        GEMINI_API_KEY: 'g',
        CTX_MODEL: 'gpt-4.1-mini',
      }),
    ).toMatchObject({ provider: 'openai' });
  });

  it('reads only the given environment, and process.env when none is given', async () => {
    vi.stubEnv('OPENAI_API_KEY', 'sk-from-process');
    expect((await createExtractorFromEnv({})).provider).toBe('extractive');
    expect((await createExtractorFromEnv()).provider).toBe('openai');
  });
});

describe('createExtractorFromEnv: invalid configuration', () => {
  it.each([
    [{ CTX_MODEL: 'openai:' }, 'names no model'],
    [{ CTX_MODEL: 'gemini:', GEMINI_API_KEY: 'g' }, 'names no model'],
    [{ CTX_MODEL: 'openai:gpt-4.1-mini' }, 'needs OPENAI_API_KEY'],
    [{ CTX_MODEL: 'gemini:gemini-2.5-flash', OPENAI_API_KEY: 'sk' }, 'needs GEMINI_API_KEY'],
    [{ CTX_MODEL: 'gpt-4.1-mini' }, 'no provider is configured'],
    [{ CTX_MODEL: 'extractive:fast' }, 'takes no model'],
    [{ CTX_MODEL: 'gpt 4', OPENAI_API_KEY: 'sk' }, 'whitespace'],
    [{ OPENAI_API_KEY: 'sk', CTX_OPENAI_API: 'completions' }, 'CTX_OPENAI_API'],
    [{ OPENAI_BASE_URL: '127.0.0.1:11434' }, 'OPENAI_BASE_URL'],
    [{ GEMINI_API_KEY: 'g', GEMINI_BASE_URL: 'localhost' }, 'GEMINI_BASE_URL'],
  ])('%j', async (env, fragment) => {
    expect((await configError(env)).message).toContain(fragment);
  });
});

describe('createExtractorFromEnv: extracting through local servers', () => {
  let openai: Awaited<ReturnType<typeof startOpenAITestServer>>;
  let gemini: Awaited<ReturnType<typeof startGeminiServer>>;
  beforeAll(async () => {
    [openai, gemini] = await Promise.all([startOpenAITestServer(), startGeminiServer()]);
  });
  afterAll(async () => {
    await Promise.all([openai.close(), gemini.close()]);
  });
  beforeEach(() => {
    openai.reset();
    gemini.reset();
  });

  it('extracts through a keyless OpenAI-compatible server over Chat Completions', async () => {
    const { extractor } = await createExtractorFromEnv(
      { OPENAI_BASE_URL: openai.baseURL, OPENAI_MODEL: 'qwen2.5:7b' },
      { instructions: 'Always keep city names.' },
    );
    openai.enqueue({ kind: 'output', text: '{"summary":"The user plans a May trip to Lisbon."}' });
    const result = await extractor.extract(request);
    expect(result.draft).toEqual({ summary: 'The user plans a May trip to Lisbon.' });
    const [sent] = openai.requests();
    expect(sent?.endpoint).toBe('chat');
    expect(sent?.model).toBe('qwen2.5:7b');
    expect(sent?.headers.authorization).toBe(`Bearer ${LOCAL_SERVER_API_KEY}`);
    expect(sent?.system).toContain('Always keep city names.');
    expect(sent?.user).toContain('plan a trip to Lisbon');
  });

  it('sends the key and uses the Responses API when asked', async () => {
    const { extractor } = await createExtractorFromEnv({
      OPENAI_BASE_URL: openai.baseURL,
      OPENAI_API_KEY: 'sk-local-test',
      CTX_OPENAI_API: 'responses',
      CTX_MODEL: 'openai:gpt-4.1-nano',
    });
    openai.enqueue({ kind: 'output', text: '{"summary":"Trip to Lisbon."}' });
    expect((await extractor.extract(request)).draft.summary).toBe('Trip to Lisbon.');
    const [sent] = openai.requests();
    expect(sent?.endpoint).toBe('responses');
    expect(sent?.model).toBe('gpt-4.1-nano');
    expect(sent?.headers.authorization).toBe('Bearer sk-local-test');
  });

  it('applies timeoutMs to the model call', async () => {
    const { extractor } = await createExtractorFromEnv(
      { OPENAI_BASE_URL: openai.baseURL },
      { timeoutMs: 300 },
    );
    openai.enqueue({ kind: 'hang' });
    const error = await extractor.extract(request).catch((caught: unknown) => caught);
    expect(ExtractionError.isInstance(error)).toBe(true);
    expect((error as ExtractionError).reason).toBe('timeout');
  });

  it('extracts through a Gemini-compatible server at GEMINI_BASE_URL', async () => {
    const chosen = await createExtractorFromEnv({
      GEMINI_API_KEY: 'gemini-local-test',
      GEMINI_BASE_URL: gemini.baseUrl,
      GEMINI_MODEL: 'gemini-test',
    });
    expect(chosen.description).toBe(`Gemini gemini-test via ${gemini.baseUrl}`);
    gemini.enqueue({ kind: 'output', text: '{"summary":"Lisbon in May."}' });
    expect((await chosen.extractor.extract(request)).draft.summary).toBe('Lisbon in May.');
    const [sent] = gemini.requests();
    expect(sent?.model).toBe('gemini-test');
    expect(sent?.headers['x-goog-api-key']).toBe('gemini-local-test');
  });
});
