import { createHash } from 'node:crypto';

/** Options of {@link renderInspectorPage}. */
export interface InspectorPageOptions {
  /**
   * A line shown under the title, e.g. which store and model this instance uses. Keep secrets out
   * of it (pass store URLs through `redactStoreUrl`).
   */
  description?: string;
  /** How often the page refreshes the list and the open session, in milliseconds. @default 1500 */
  pollIntervalMs?: number;
  /** Show a sign-out button (the server signs operators in). @default false */
  signOut?: boolean;
}

/** The inspector page and the Content-Security-Policy that lets exactly its inline code run. */
export interface InspectorPage {
  html: string;
  contentSecurityPolicy: string;
}

const STYLE = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5d6577; --line: #dfe3ea; --bg: #f6f7f9;
  --card: #fff; --accent: #2f5bd3; --done: #1f7a4d; --warn: #a33a1f; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px; background: var(--card);
  border-bottom: 1px solid var(--line); }
header h1 { margin: 0; font-size: 18px; }
header .description { color: var(--muted); font-size: 13px; }
header .status { margin-left: auto; font-size: 13px; color: var(--muted); }
header .status.offline { color: var(--warn); font-weight: 600; }
header form { margin: 0; }
header form button { padding: 4px 10px; border: 1px solid var(--line); border-radius: 6px;
  background: var(--card); font: inherit; font-size: 13px; cursor: pointer; }
.sign-in { max-width: 420px; margin: 12vh auto; padding: 24px; }
.sign-in h1 { margin: 0 0 6px; font-size: 20px; }
.sign-in p { color: var(--muted); margin: 0 0 16px; }
.sign-in label { display: block; font-weight: 600; margin-bottom: 6px; }
.sign-in input { width: 100%; padding: 8px; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
.sign-in button { margin-top: 14px; padding: 8px 16px; border: 0; border-radius: 6px;
  background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
.sign-in .error { color: var(--warn); font-weight: 600; }
main { display: grid; grid-template-columns: minmax(260px, 340px) 1fr; gap: 20px; padding: 20px 24px;
  align-items: start; }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 10px; }
.list-head { display: flex; gap: 8px; padding: 12px; border-bottom: 1px solid var(--line); }
.list-head input { flex: 1; padding: 6px 8px; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
ul.sessions { list-style: none; margin: 0; padding: 0; max-height: calc(100vh - 190px); overflow: auto; }
ul.sessions li { border-bottom: 1px solid var(--line); }
ul.sessions button { display: block; width: 100%; text-align: left; padding: 10px 12px; border: 0;
  background: none; font: inherit; color: inherit; cursor: pointer; }
ul.sessions button:hover { background: #eef2fb; }
ul.sessions li.selected button { background: #e3eafc; box-shadow: inset 3px 0 0 var(--accent); }
.session-id { font-weight: 600; word-break: break-all; }
.meta { color: var(--muted); font-size: 12.5px; }
.goal-line { font-size: 13px; margin-top: 2px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.empty { padding: 16px 12px; color: var(--muted); }
.more[hidden] { display: none; }
.more { display: block; margin: 10px auto; padding: 6px 14px; border: 1px solid var(--line);
  border-radius: 6px; background: var(--card); font: inherit; cursor: pointer; }
#detail { padding: 20px 24px; min-height: 240px; }
#detail h2 { margin: 0 0 4px; font-size: 20px; word-break: break-all; }
.badges { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 18px; }
.badge { font-size: 12.5px; padding: 2px 9px; border-radius: 999px; background: #eef0f4; color: var(--muted); }
.badge.version { background: #e3eafc; color: var(--accent); font-weight: 600; transition: background .6s; }
.badge.version.flash { background: #ffe8a3; }
h3 { margin: 18px 0 6px; font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
.summary { white-space: pre-wrap; margin: 0; }
.goal { font-size: 16px; font-weight: 600; margin: 0; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; margin: 0; }
dl.fields dt { color: var(--muted); }
dl.fields dd { margin: 0; overflow-wrap: anywhere; }
ol.plan { list-style: none; margin: 0; padding: 0; }
ol.plan li { display: flex; align-items: flex-start; gap: 10px; padding: 6px 0; border-bottom: 1px dashed var(--line); }
ol.plan .box { flex: none; display: inline-flex; align-items: center; justify-content: center;
  width: 18px; height: 18px; margin-top: 3px; border: 1.5px solid #9aa3b2; border-radius: 4px;
  font-size: 13px; font-weight: 700; line-height: 1; color: #fff; background: var(--card); }
ol.plan .box[aria-checked="true"] { border-color: var(--done); background: var(--done); }
ol.plan .number { color: var(--muted); min-width: 1.6em; text-align: right; }
ol.plan li.done .text { color: var(--done); }
.progress-count { color: var(--muted); font-size: 13px; margin-top: 6px; }
.placeholder { color: var(--muted); }
`;

const SCRIPT = `
(() => {
  'use strict';
  const POLL_MS = __POLL_MS__;
  const state = { user: '', sessions: [], nextCursor: null, pages: 1, selected: null, version: null };
  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    const seconds = Math.max(0, Math.round((Date.now() - date.getTime()) / 1000));
    const ago = seconds < 60 ? seconds + ' s ago' : seconds < 3600 ? Math.round(seconds / 60) + ' min ago'
      : seconds < 86400 ? Math.round(seconds / 3600) + ' h ago' : Math.round(seconds / 86400) + ' d ago';
    return date.toLocaleString() + ' (' + ago + ')';
  }

  async function api(path) {
    const response = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
    const body = await response.json().catch(() => null);
    // The sign-in expired or the token was revoked: the server shows the sign-in form again.
    if (response.status === 401) location.reload();
    if (!response.ok) {
      const error = new Error(body && body.error ? body.error.message : 'HTTP ' + response.status);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function setStatus(text, offline) {
    const status = $('status');
    status.textContent = text;
    status.classList.toggle('offline', Boolean(offline));
  }

  function listUrl(cursor, limit) {
    const params = new URLSearchParams({ limit: String(limit) });
    if (state.user) params.set('user', state.user);
    if (cursor) params.set('cursor', cursor);
    return 'v1/sessions?' + params.toString();
  }

  async function loadList() {
    const page = await api(listUrl(null, Math.min(1000, 50 * state.pages)));
    state.sessions = page.items;
    state.nextCursor = page.nextCursor;
    renderList();
  }

  async function loadMore() {
    const page = await api(listUrl(state.nextCursor, 50));
    state.sessions = state.sessions.concat(page.items);
    state.nextCursor = page.nextCursor;
    state.pages += 1;
    renderList();
  }

  function renderList() {
    const list = $('sessions');
    list.replaceChildren();
    if (state.sessions.length === 0) {
      list.append(el('li', 'empty', state.user ? 'No sessions for this user.' : 'No sessions yet.'));
    }
    for (const session of state.sessions) {
      const item = el('li');
      item.dataset.sessionId = session.sessionId;
      if (session.sessionId === state.selected) item.classList.add('selected');
      const button = el('button');
      button.type = 'button';
      button.append(el('div', 'session-id', session.sessionId));
      const done = session.progress ? session.progress.length : 0;
      const meta = ['v' + session.version, formatTime(session.updatedAt)];
      if (session.userId !== null) meta.unshift(session.userId);
      if (session.plan) meta.push(done + '/' + session.plan.length + ' steps');
      button.append(el('div', 'meta', meta.join(' · ')));
      if (session.goal) button.append(el('div', 'goal-line', session.goal));
      button.addEventListener('click', () => { location.hash = '#/sessions/' + encodeURIComponent(session.sessionId); });
      item.append(button);
      list.append(item);
    }
    $('more').hidden = !state.nextCursor;
  }

  function section(title, content) {
    const fragment = document.createDocumentFragment();
    fragment.append(el('h3', null, title), content);
    return fragment;
  }

  function renderDetail(context) {
    const detail = $('detail');
    detail.replaceChildren();
    if (!context) {
      detail.append(el('p', 'placeholder', state.selected
        ? 'Session "' + state.selected + '" was not found (it may have been deleted).'
        : 'Select a session to see its context.'));
      return;
    }
    detail.append(el('h2', null, context.sessionId));
    const badges = el('div', 'badges');
    const version = el('span', 'badge version', 'version ' + context.version);
    version.id = 'version';
    if (state.version !== null && state.version !== context.version) {
      version.classList.add('flash');
      setTimeout(() => version.classList.remove('flash'), 900);
    }
    badges.append(version);
    const updated = el('span', 'badge', 'updated ' + formatTime(context.updatedAt));
    updated.id = 'updated';
    badges.append(updated, el('span', 'badge', 'created ' + new Date(context.createdAt).toLocaleString()));
    badges.append(el('span', 'badge', context.userId === null ? 'anonymous' : 'user ' + context.userId));
    detail.append(badges);

    detail.append(section('Summary', context.summary
      ? el('p', 'summary', context.summary) : el('p', 'placeholder', '(empty)')));
    if (context.goal !== null) detail.append(section('Goal', el('p', 'goal', context.goal)));
    if (context.plan !== null) {
      const done = new Set(context.progress || []);
      const plan = el('ol', 'plan');
      plan.id = 'plan';
      context.plan.forEach((step, index) => {
        const item = el('li', done.has(step) ? 'done' : null);
        const box = el('span', 'box', done.has(step) ? '✓' : '');
        box.setAttribute('role', 'checkbox');
        box.setAttribute('aria-checked', String(done.has(step)));
        box.setAttribute('aria-disabled', 'true');
        box.setAttribute('aria-label', step);
        item.append(box, el('span', 'number', (index + 1) + '.'), el('span', 'text', step));
        plan.append(item);
      });
      const count = context.plan.filter((step) => done.has(step)).length;
      const fragment = section('Plan', plan);
      fragment.append(el('div', 'progress-count', count + ' of ' + context.plan.length + ' steps completed'));
      detail.append(fragment);
    }
    if (context.fields) detail.append(section('Fields', renderFields(context.fields)));
    state.version = context.version;
  }

  // Custom fields: one row per field, text as is, anything else as JSON.
  function renderFields(fields) {
    const list = el('dl', 'fields');
    list.id = 'fields';
    for (const [key, value] of Object.entries(fields)) {
      if (value === null) continue;
      list.append(el('dt', null, key), el('dd', null, typeof value === 'string' ? value : JSON.stringify(value)));
    }
    return list;
  }

  async function loadSelected() {
    if (!state.selected) return renderDetail(null);
    try {
      const body = await api('v1/sessions/' + encodeURIComponent(state.selected) + '/context');
      renderDetail(body.context);
    } catch (error) {
      if (error.status === 404) return renderDetail(null);
      throw error;
    }
  }

  function readHash() {
    const match = /^#\\/sessions\\/(.+)$/.exec(location.hash);
    let selected = null;
    if (match) {
      try { selected = decodeURIComponent(match[1]); } catch { selected = null; }
    }
    if (selected !== state.selected) state.version = null;
    state.selected = selected;
  }

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    try {
      await Promise.all([loadList(), loadSelected()]);
      setStatus('Live · refreshed ' + new Date().toLocaleTimeString(), false);
    } catch (error) {
      setStatus('Connection problem: ' + error.message + ' · retrying', true);
    }
    timer = setTimeout(refresh, POLL_MS);
  }

  window.addEventListener('hashchange', () => { readHash(); renderList(); refresh(); });
  $('user-filter').addEventListener('change', (event) => {
    state.user = event.target.value.trim();
    state.pages = 1;
    refresh();
  });
  $('more').addEventListener('click', () => {
    loadMore().catch((error) => setStatus('Could not load more: ' + error.message, true));
  });
  readHash();
  renderDetail(null);
  refresh();
})();
`;

const BODY = `
<header>
  <h1>ctx inspector</h1>
  <span class="description" id="description"></span>
  <span class="status" id="status" role="status">Loading…</span>
</header>
<main>
  <section class="panel" aria-label="Sessions">
    <div class="list-head">
      <input id="user-filter" type="search" placeholder="Filter by user id" aria-label="Filter by user id">
    </div>
    <ul class="sessions" id="sessions"></ul>
    <button class="more" id="more" type="button" hidden>Load more</button>
  </section>
  <section class="panel" id="detail" aria-live="polite"></section>
</main>
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (character) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[character] ??
      character,
  );
}

/**
 * Builds the inspector: one self-contained HTML page (inline CSS and JavaScript, no external
 * resource) that lists sessions through the JSON API, opens one, and shows its summary, goal,
 * plan with completed steps checked, version and update time, refreshing itself every
 * `pollIntervalMs`. Stored text is only ever inserted as text (`textContent`), and the returned
 * Content-Security-Policy allows exactly the page's own inline script and style by hash.
 *
 * @example
 * ```ts
 * const page = renderInspectorPage({ description: 'store: sqlite:./data/ctx.db' });
 * ```
 */
export function renderInspectorPage(options: InspectorPageOptions = {}): InspectorPage {
  const pollIntervalMs = options.pollIntervalMs ?? 1500;
  const script = SCRIPT.replace('__POLL_MS__', String(Math.max(200, Math.trunc(pollIntervalMs))));
  let body = options.description
    ? BODY.replace(
        '<span class="description" id="description"></span>',
        `<span class="description" id="description">${escapeHtml(options.description)}</span>`,
      )
    : BODY;
  if (options.signOut) {
    body = body.replace(
      '</header>',
      '  <form method="post" action="inspector/sign-out"><button id="sign-out" type="submit">Sign out</button></form>\n</header>',
    );
  }
  return { html: page(body, script), contentSecurityPolicy: policy(script) };
}

/**
 * The sign-in page of an inspector behind authentication: one form that posts the operator
 * token to `inspector/sign-in` (in the body, never in the URL). No script runs on it.
 */
export function renderSignInPage(
  options: {
    /** An error to show above the form. */
    message?: string;
    /**
     * The form's action, relative to the page's URL: `inspector/sign-in` on the page at `/`,
     * `sign-in` on the page answered by a failed sign-in (at `/inspector/sign-in`). Relative, so
     * the inspector also works behind a proxy that serves it under a path prefix.
     * @default 'inspector/sign-in'
     */
    action?: 'inspector/sign-in' | 'sign-in';
  } = {},
): InspectorPage {
  const error = options.message
    ? `<p class="error" id="sign-in-error" role="alert">${escapeHtml(options.message)}</p>`
    : '';
  const body = `
<section class="panel sign-in">
  <h1>ctx inspector</h1>
  <p>Sign in with an operator token.</p>
  ${error}
  <form method="post" action="${options.action ?? 'inspector/sign-in'}">
    <label for="token">Operator token</label>
    <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
    <button id="sign-in" type="submit">Sign in</button>
  </form>
</section>
`;
  return { html: page(body), contentSecurityPolicy: policy() };
}

function page(body: string, script?: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ctx inspector</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>${body}${script === undefined ? '' : `<script>${script}</script>`}
</body>
</html>
`;
}

function policy(script?: string): string {
  return [
    "default-src 'none'",
    script === undefined ? "script-src 'none'" : `script-src ${sha256(script)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}
