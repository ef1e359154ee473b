import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteRepository } from '@ctx/store-sqlite';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  completeStepTurn,
  PLAN_STEPS,
  PLAN_TURN,
  postTurn,
  randomId,
  type ServerProcess,
  spawnServer,
} from './helpers.js';

// The system's Chromium (Debian package `chromium`); playwright-core never downloads a browser.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

const directory = mkdtempSync(join(tmpdir(), 'ctx-inspector-'));
let server: ServerProcess;
let browser: BrowserContext;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`No Chromium at ${CHROMIUM}: install it with "apt-get install -y chromium"`);
  }
  server = await spawnServer({
    CTX_STORE_URL: `sqlite:${join(directory, 'ctx.db')}`,
    CTX_MODEL: 'extractive',
    CTX_PLANNING: '1',
  });
  browser = await chromium.launchPersistentContext(join(directory, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 820 },
  });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('inspector page in headless Chromium', () => {
  it('lists sessions, opens one, shows its plan, and follows new turns live', async () => {
    const sessionId = randomId('deploy');
    expect((await postTurn(server.url, sessionId, 'alice', PLAN_TURN)).status).toBe(200);
    expect((await postTurn(server.url, sessionId, 'alice', completeStepTurn(1))).status).toBe(200);

    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(server.url);

    const entry = page.locator(`li[data-session-id="${sessionId}"] button`);
    await entry.waitFor();
    await expect.poll(() => entry.textContent()).toContain('1/4 steps');
    await entry.click();

    const steps = page.locator('#plan li');
    await expect.poll(() => steps.count()).toBe(4);
    expect(await steps.locator('.text').allTextContents()).toEqual(PLAN_STEPS);
    const boxes = page.getByRole('checkbox');
    const checked = () => boxes.evaluateAll((items) => items.map((item) => item.ariaChecked));
    expect(await checked()).toEqual(['true', 'false', 'false', 'false']);
    expect(await boxes.first().isChecked()).toBe(true);
    expect(await boxes.first().getAttribute('aria-disabled')).toBe('true');
    expect(await page.getByRole('checkbox', { name: PLAN_STEPS[1] }).isChecked()).toBe(false);
    expect(await page.locator('#more').isVisible()).toBe(false);
    expect(await page.locator('#detail .goal').textContent()).toBe(
      'Deploy my Python web app to production',
    );
    expect(await page.locator('#detail .summary').textContent()).toContain('Containerize');
    expect(await page.locator('#version').textContent()).toBe('version 2');
    expect(await page.locator('#updated').textContent()).toMatch(/^updated .+ ago\)$/);
    expect(new URL(page.url()).hash).toBe(`#/sessions/${encodeURIComponent(sessionId)}`);

    // A new turn arrives through the API; the open page picks it up without a reload.
    await page.evaluate(() => {
      (globalThis as unknown as { marker: string }).marker = 'same page';
    });
    expect((await postTurn(server.url, sessionId, 'alice', completeStepTurn(2))).status).toBe(200);
    await expect
      .poll(() => page.locator('#version').textContent(), { timeout: 10_000 })
      .toBe('version 3');
    expect(await checked()).toEqual(['true', 'true', 'false', 'false']);
    expect(await page.locator('.progress-count').textContent()).toBe('2 of 4 steps completed');
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: string }).marker)).toBe(
      'same page',
    );

    const screenshot = join(tmpdir(), `ctx-inspector-${sessionId}.png`);
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);
    console.info(`inspector screenshot: ${screenshot}`);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows stored text as text, never as markup', async () => {
    const sessionId = randomId('xss');
    const payload = '<img src=x onerror="window.pwned = true"> Please review <b>this</b>.';
    const response = await postTurn(server.url, sessionId, 'mallory', [
      { role: 'user', content: payload },
      { role: 'assistant', content: 'I will review it and report back tomorrow.' },
    ]);
    expect(response.status).toBe(200);

    const page = await browser.newPage();
    await page.goto(`${server.url}/#/sessions/${encodeURIComponent(sessionId)}`);
    const summary = page.locator('#detail .summary');
    await summary.waitFor();
    expect(await summary.textContent()).toContain('<img src=x onerror=');
    expect(await page.locator('#detail img, #detail b').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { pwned?: boolean }).pwned)).toBe(
      undefined,
    );
    await page.close();
  });

  it('shows custom fields, as text', async () => {
    const sessionId = randomId('fields');
    // Written straight into the server's database, as an app with a fields schema stores them.
    const repository = createSqliteRepository({ filename: join(directory, 'ctx.db') });
    const now = new Date();
    await repository.save(
      {
        sessionId,
        userId: 'erin',
        summary: 'Deploying the todo API.',
        goal: null,
        plan: null,
        progress: null,
        createdAt: now,
        updatedAt: now,
        version: 1,
        fields: { platform: '<b>fly</b>', regions: ['fra', 'ams'], unset: null },
      },
      { expectedVersion: null },
    );
    await repository.close();

    const page = await browser.newPage();
    await page.goto(`${server.url}/#/sessions/${encodeURIComponent(sessionId)}`);
    const fields = page.locator('#fields');
    await fields.waitFor();
    expect(await fields.locator('dt').allTextContents()).toEqual(['platform', 'regions']);
    expect(await fields.locator('dd').allTextContents()).toEqual(['<b>fly</b>', '["fra","ams"]']);
    expect(await page.locator('#detail b').count()).toBe(0);
    await page.close();
  });

  it('says so when the open session is deleted, and filters the list by user', async () => {
    const kept = randomId('kept');
    const removed = randomId('removed');
    await postTurn(server.url, kept, 'carol', PLAN_TURN);
    await postTurn(server.url, removed, 'dave', PLAN_TURN);

    const page = await browser.newPage();
    await page.goto(`${server.url}/#/sessions/${encodeURIComponent(removed)}`);
    await page.locator('#plan').waitFor();
    const deleted = await fetch(`${server.url}/v1/sessions/${removed}`, {
      method: 'DELETE',
      headers: { 'x-ctx-user': 'dave' },
    });
    expect(deleted.status).toBe(204);
    await expect
      .poll(() => page.locator('#detail').textContent(), { timeout: 10_000 })
      .toContain('was not found');

    await page.fill('#user-filter', 'carol');
    await page.press('#user-filter', 'Enter');
    await expect
      .poll(() =>
        page
          .locator('#sessions li')
          .evaluateAll((items) => items.map((item) => item.getAttribute('data-session-id'))),
      )
      .toEqual([kept]);
    await page.close();
  });
});
