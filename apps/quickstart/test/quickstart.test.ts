import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const appDir = fileURLToPath(new URL('..', import.meta.url));

describe('quickstart, run the way a user runs it', () => {
  let output = '';

  beforeAll(() => {
    const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], {
      cwd: appDir,
      encoding: 'utf8',
    });
    expect(build.status, build.stdout + build.stderr).toBe(0);
    const run = spawnSync(process.execPath, ['dist/main.js'], { cwd: appDir, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    output = run.stdout;
  }, 60_000);

  it('plays both scenarios and prints the snapshot and next system prompt after each turn', () => {
    expect(output).toContain('Designing a REST API (summary mode)');
    expect(output).toContain('Deploying a Python app (planning mode)');
    expect(output.match(/\[stored snapshot\] updated/g)).toHaveLength(6);
    expect(output.match(/\[system prompt for the next turn\]/g)).toHaveLength(6);
    expect(output).toContain('You are a helpful engineering assistant.\n\n<session_context>');
  });

  it('tracks the deployment plan and the completed step', () => {
    const deploy = output.slice(output.indexOf('Deploying a Python app'));
    expect(deploy).toMatch(/Goal: Deploy a Python app to production/i);
    expect(deploy).toContain('  1. Containerize the app with Docker');
    expect(deploy).toContain('  ✓ Containerize the app with Docker');
  });
});
