import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '@ctx/core';
import { createSqliteRepository } from '@ctx/store-sqlite';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  completeStepTurn,
  PLAN_STEPS,
  PLAN_TURN,
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
const OPERATOR_TOKEN = randomBytes(24).toString('hex');
const SERVICE_TOKEN = randomBytes(24).toString('hex');
let server: ServerProcess;
let browser: BrowserContext;

/** Posts a turn as the service token acting for `userId`. */
function postTurn(baseUrl: string, sessionId: string, userId: string, messages: Message[]) {
  return fetch(`${baseUrl}/v1/sessions/${encodeURIComponent(sessionId)}/turns`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${SERVICE_TOKEN}`,
      'x-ctx-user': encodeURIComponent(userId),
    },
    body: JSON.stringify({ messages }),
  });
}

/** Opens the inspector and signs in with the operator token through its form. */
async function signedIn(path = '/'): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${server.url}${path}`);
  if (await page.locator('#token').isVisible()) {
    await page.fill('#token', OPERATOR_TOKEN);
    await Promise.all([page.waitForURL(`${server.url}/`), page.click('#sign-in')]);
    if (path !== '/') await page.goto(`${server.url}${path}`);
  }
  return page;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`No Chromium at ${CHROMIUM}: install it with "apt-get install -y chromium"`);
  }
  const authFile = join(directory, 'tokens.json');
  writeFileSync(
    authFile,
    JSON.stringify({
      tokens: [
        { token: SERVICE_TOKEN, role: 'service' },
        { token: OPERATOR_TOKEN, role: 'operator', name: 'ops' },
      ],
    }),
  );
  server = await spawnServer({
    CTX_STORE_URL: `sqlite:${join(directory, 'ctx.db')}`,
    CTX_MODEL: 'extractive',
    CTX_PLANNING: '1',
    CTX_AUTH_FILE: authFile,
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
  it('refuses to show anything without a sign-in, and refuses a wrong token', async () => {
    const sessionId = randomId('hidden');
    expect((await postTurn(server.url, sessionId, 'alice', PLAN_TURN)).status).toBe(200);
    await browser.clearCookies();
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.locator('#token').waitFor();
    expect(await page.locator('#sessions').count()).toBe(0);
    expect(await page.content()).not.toContain(sessionId);
    // The page's own origin cannot read the API without the sign-in cookie.
    const status = await page.evaluate(async () => (await fetch('v1/sessions')).status);
    expect(status).toBe(401);

    await page.fill('#token', 'not-the-token');
    await page.click('#sign-in');
    await expect
      .poll(() => page.locator('#sign-in-error').textContent())
      .toBe('That token is not valid.');
    expect(new URL(page.url()).search).toBe('');
    expect(await page.context().cookies()).toEqual([]);

    // The form shown after a failed attempt signs in too.
    await page.fill('#token', OPERATOR_TOKEN);
    await Promise.all([page.waitForURL(`${server.url}/`), page.click('#sign-in')]);
    await page.locator('#sign-out').waitFor();
    await browser.clearCookies();
    await page.close();
  });

  it('signs in with the operator token: an HttpOnly, SameSite=Strict cookie, no token in the URL', async () => {
    const page = await signedIn();
    await page.locator('#sessions').waitFor();
    expect(page.url()).toBe(`${server.url}/`);
    expect(page.url()).not.toContain(OPERATOR_TOKEN);
    const cookies = await page.context().cookies();
    expect(cookies).toEqual([
      expect.objectContaining({ name: 'ctx_inspector', httpOnly: true, sameSite: 'Strict' }),
    ]);
    expect(cookies[0]?.value).not.toContain(OPERATOR_TOKEN);
    expect(
      await page.evaluate(
        () => (globalThis as unknown as { document: { cookie: string } }).document.cookie,
      ),
    ).toBe('');
    await page.close();
  });

  it('lists sessions, opens one, shows its plan, and follows new turns live', async () => {
    const sessionId = randomId('deploy');
    expect((await postTurn(server.url, sessionId, 'alice', PLAN_TURN)).status).toBe(200);
    expect((await postTurn(server.url, sessionId, 'alice', completeStepTurn(1))).status).toBe(200);

    const page = await signedIn();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.reload();
    await page.locator('#sessions').waitFor();

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

    const page = await signedIn(`/#/sessions/${encodeURIComponent(sessionId)}`);
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

    const page = await signedIn(`/#/sessions/${encodeURIComponent(sessionId)}`);
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

    const page = await signedIn(`/#/sessions/${encodeURIComponent(removed)}`);
    await page.locator('#plan').waitFor();
    const deleted = await fetch(`${server.url}/v1/sessions/${removed}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'x-ctx-user': 'dave' },
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

    // Signing out ends the live view: the page asks for the token again.
    await Promise.all([page.waitForURL(`${server.url}/`), page.click('#sign-out')]);
    await page.locator('#token').waitFor();
    expect(await page.context().cookies()).toEqual([]);
    expect(await page.evaluate(async () => (await fetch('v1/sessions')).status)).toBe(401);
    await page.close();
  });
});
