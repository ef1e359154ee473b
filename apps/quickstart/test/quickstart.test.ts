import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSqliteRepository } from '@ctx/store-sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type OpenAITestServer,
  startOpenAITestServer,
} from '../../../packages/model-openai/test/openai-test-server.js';

const appDir = fileURLToPath(new URL('..', import.meta.url));

function run(command: string, args: string[], env: Record<string, string | undefined>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(command, args, { cwd: appDir, env: env as NodeJS.ProcessEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// The environment of a user without model keys: none of the variables that select a provider.
function cleanEnv(extra: Record<string, string>) {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(OPENAI_|GEMINI_|GOOGLE_|CTX_)/.test(name)) delete env[name];
  }
  return { ...env, ...extra };
}

const tmp = mkdtempSync(join(tmpdir(), 'ctx-quickstart-'));

beforeAll(async () => {
  const build = await run('npx', ['tsc', '-p', 'tsconfig.build.json'], process.env);
  expect(build.code, build.stdout + build.stderr).toBe(0);
}, 60_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('quickstart without a model key (extractive extractor, SQLite)', () => {
  let output = '';
  const file = join(tmp, 'extractive.db');

  beforeAll(async () => {
    const result = await run(
      process.execPath,
      ['dist/main.js'],
      cleanEnv({ CTX_STORE_URL: `sqlite:${file}` }),
    );
    expect(result.code, result.stderr).toBe(0);
    output = result.stdout;
  }, 60_000);

  it('says in one line which extractor it uses', () => {
    expect(output).toMatch(/^extractor: extractive.*OPENAI_API_KEY/m);
    expect(output).toContain(`store:     sqlite:${file}`);
  });

  it('plays both scenarios, printing the snapshot and next system prompt after each turn', () => {
    expect(output).toContain('Designing a REST API (summary mode)');
    expect(output).toContain('Deploying a Python app (planning mode)');
    expect(output.match(/\[stored snapshot\] updated/g)).toHaveLength(6);
    expect(output.match(/\[system prompt for the next turn\]/g)).toHaveLength(6);
    expect(output).toContain('You are a helpful engineering assistant.\n\n<session_context>');
    const deploy = output.slice(output.indexOf('Deploying a Python app'));
    expect(deploy).toMatch(/Goal: Deploy a Python app to production/i);
    expect(deploy).toContain('  ✓ Containerize the app with Docker');
  });

  it('leaves both sessions in the SQLite file, and a second run starts them afresh', async () => {
    const again = await run(
      process.execPath,
      ['dist/main.js'],
      cleanEnv({ CTX_STORE_URL: `sqlite:${file}` }),
    );
    expect(again.code, again.stderr).toBe(0);
    const repository = createSqliteRepository({ filename: file });
    try {
      const rest = await repository.get('todo-rest-api');
      const deploy = await repository.get('python-deploy');
      // Versions never restart: the delete left a tombstone at version 3, so the replayed
      // session's three updates are versions 4 to 6.
      expect(rest?.version).toBe(6);
      expect(deploy?.version).toBe(6);
      expect(rest?.summary).toMatch(/PATCH/);
      expect(deploy?.plan).toHaveLength(5);
      expect(deploy?.progress).toContain('Containerize the app with Docker');
    } finally {
      await repository.close();
    }
  }, 60_000);
});

describe('quickstart with an OpenAI-compatible server', () => {
  let server: OpenAITestServer;

  beforeAll(async () => {
    server = await startOpenAITestServer();
  });
  afterAll(() => server.close());

  it('uses the model named by the environment for every extraction', async () => {
    for (let turn = 1; turn <= 6; turn += 1) {
      const planning = turn > 3;
      server.enqueue({
        kind: 'output',
        text: JSON.stringify(
          planning
            ? {
                summary: `Model summary ${turn}.`,
                goal: 'Deploy a Python app to production',
                plan: ['Containerize', 'Database'],
                completed_steps: turn > 4 ? [1] : [],
                // The model names the platform once; later turns return null and it is kept.
                fields: { platform: turn === 4 ? 'Fly.io' : null },
              }
            : { summary: `Model summary ${turn}.` },
        ),
        usage: { inputTokens: 100 + turn, outputTokens: 20 },
      });
    }
    const file = join(tmp, 'openai.db');
    const result = await run(
      process.execPath,
      ['dist/main.js'],
      cleanEnv({
        CTX_STORE_URL: `sqlite:${file}`,
        OPENAI_BASE_URL: server.baseURL,
        OPENAI_MODEL: 'llama3.2',
      }),
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^extractor: .*llama3\.2.*127\.0\.0\.1/m);
    expect(result.stdout).toContain('Summary: Model summary 6.');
    expect(result.stdout).toContain('updated, 106 input / 20 output tokens');
    expect(result.stdout).toContain('  ✓ Containerize');
    const requests = server.requests();
    // The deployment scenario's custom field: extracted once, kept, rendered with its label.
    const deploy = result.stdout.slice(result.stdout.indexOf('Deploying a Python app'));
    expect(
      deploy.match(/Fields:\n {2}Target platform: Fly\.io\n<\/session_context>/g),
    ).toHaveLength(3);
    expect(JSON.stringify(requests[3]?.format?.schema)).toContain('"platform"');
    expect(requests[4]?.user).toContain('- platform: "Fly.io"');
    expect(requests).toHaveLength(6);
    expect(requests.every((request) => request.model === 'llama3.2')).toBe(true);
    // The second turn's request carries the first snapshot and only the second turn's messages.
    expect(requests[1]?.user).toContain('Model summary 1.');
    expect(requests[1]?.user).toContain('What about the delete endpoint?');
    expect(requests[1]?.user).not.toContain('Should I use PUT or PATCH');
  }, 60_000);
});
