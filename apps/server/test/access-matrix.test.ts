import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryRepository, type Message, SessionContextStore } from '@ctx/core';
import { createExtractiveExtractor } from '@ctx/model-extractive';
import { describe, expect, it } from 'vitest';
import { createServerApp, type SessionContextJson } from '../src/app.js';
import { parseAuthFile } from '../src/auth.js';

const TOKENS = {
  alice: randomBytes(24).toString('hex'),
  bob: randomBytes(24).toString('hex'),
  service: randomBytes(24).toString('hex'),
  operator: randomBytes(24).toString('hex'),
};

const AUTH = parseAuthFile(
  JSON.stringify({
    tokens: [
      { token: TOKENS.alice, role: 'user', userId: 'alice' },
      { token: TOKENS.bob, role: 'user', userId: 'bob' },
      { token: TOKENS.service, role: 'service' },
      { token: TOKENS.operator, role: 'operator' },
    ],
  }),
);

const TURN: Message[] = [
  { role: 'user', content: 'Please keep our database migration plan in mind.' },
  { role: 'assistant', content: 'Noted: we migrate the orders table first, then the users table.' },
];
const BOB_TURN: Message[] = [
  { role: 'user', content: 'I am writing release notes for version two.' },
  { role: 'assistant', content: 'Start with the new export feature, then list the fixes.' },
];

/** Who asks: the headers that make the principal. */
const PRINCIPALS: Record<string, Record<string, string>> = {
  'no token': {},
  'wrong token': { authorization: `Bearer ${randomBytes(24).toString('hex')}` },
  'user alice': { authorization: `Bearer ${TOKENS.alice}` },
  'user bob': { authorization: `Bearer ${TOKENS.bob}` },
  'user alice claiming bob': { authorization: `Bearer ${TOKENS.alice}`, 'x-ctx-user': 'bob' },
  'service as alice': { authorization: `Bearer ${TOKENS.service}`, 'x-ctx-user': 'alice' },
  'service as bob': { authorization: `Bearer ${TOKENS.service}`, 'x-ctx-user': 'bob' },
  'service naming nobody': { authorization: `Bearer ${TOKENS.service}` },
  operator: { authorization: `Bearer ${TOKENS.operator}` },
};

type RequestName =
  | 'get alice’s context'
  | 'list'
  | 'list ?user=alice'
  | 'update alice’s session'
  | 'schedule on alice’s session'
  | 'delete alice’s session'
  | 'inspector sign-in'
  | 'openapi.json';

/** The requests tried; the token of the sign-in is the principal's bearer token. */
function requestOf(name: RequestName, headers: Record<string, string>): [string, RequestInit] {
  const json = { ...headers, 'content-type': 'application/json' };
  const body = JSON.stringify({ messages: TURN });
  switch (name) {
    case 'get alice’s context':
      return ['/v1/sessions/alice-plan/context', { headers }];
    case 'list':
      return ['/v1/sessions', { headers }];
    case 'list ?user=alice':
      return ['/v1/sessions?user=alice', { headers }];
    case 'update alice’s session':
      return ['/v1/sessions/alice-plan/turns', { method: 'POST', headers: json, body }];
    case 'schedule on alice’s session':
      return ['/v1/sessions/alice-plan/turns?wait=false', { method: 'POST', headers: json, body }];
    case 'delete alice’s session':
      return ['/v1/sessions/alice-plan', { method: 'DELETE', headers }];
    case 'inspector sign-in': {
      const token = /^Bearer (.+)$/.exec(headers.authorization ?? '')?.[1] ?? '';
      return [
        'http://localhost/inspector/sign-in',
        {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            origin: 'http://localhost',
          },
          body: new URLSearchParams({ token }).toString(),
        },
      ];
    }
    case 'openapi.json':
      return ['/openapi.json', { headers }];
  }
}

const REQUESTS: RequestName[] = [
  'get alice’s context',
  'list',
  'list ?user=alice',
  'update alice’s session',
  'schedule on alice’s session',
  'delete alice’s session',
  'inspector sign-in',
  'openapi.json',
];

/** The expected status of every request for every principal. */
const EXPECTED: Record<string, number[]> = {
  'no token': [401, 401, 401, 401, 401, 401, 401, 200],
  'wrong token': [401, 401, 401, 401, 401, 401, 401, 200],
  'user alice': [200, 200, 200, 200, 202, 204, 403, 200],
  'user bob': [403, 200, 403, 403, 403, 403, 403, 200],
  'user alice claiming bob': [403, 403, 403, 403, 403, 403, 403, 200],
  'service as alice': [200, 200, 200, 200, 202, 204, 403, 200],
  'service as bob': [403, 200, 403, 403, 403, 403, 403, 200],
  'service naming nobody': [400, 400, 400, 400, 400, 400, 403, 200],
  operator: [200, 200, 200, 403, 403, 403, 303, 200],
};

/** A fresh app holding one session of alice and one of bob, written through the service token. */
async function seeded() {
  const repository = createMemoryRepository();
  const store = new SessionContextStore({ repository, extractor: createExtractiveExtractor() });
  const app = createServerApp({ store, auth: AUTH, onAudit: () => undefined });
  for (const [sessionId, user, messages] of [
    ['alice-plan', 'alice', TURN],
    ['bob-notes', 'bob', BOB_TURN],
  ] as const) {
    const response = await app.request(`/v1/sessions/${sessionId}/turns`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${TOKENS.service}`,
        'x-ctx-user': user,
      },
      body: JSON.stringify({ messages }),
    });
    expect(response.status).toBe(200);
  }
  return { app, store };
}

describe('requests × principals', () => {
  it('answers every cell as the table says, with no cross-user read, write, delete or list', async () => {
    const seen: Record<string, number[]> = {};
    for (const [principal, headers] of Object.entries(PRINCIPALS)) {
      seen[principal] = [];
      for (const name of REQUESTS) {
        const { app, store } = await seeded();
        const [url, init] = requestOf(name, headers);
        const response = await app.request(url, init);
        seen[principal].push(response.status);
        const text = await response.text();
        await store.flush();
        const alice = await store.get('alice-plan');
        const mayActAsAlice = ['user alice', 'service as alice'].includes(principal);

        // Alice's session changes only through a principal acting as alice.
        if (!mayActAsAlice) {
          expect(alice, `${principal} / ${name}`).toMatchObject({ version: 1, userId: 'alice' });
        }
        // Alice's text reaches only alice, a service acting as alice, and the operator.
        if (!mayActAsAlice && principal !== 'operator' && name !== 'openapi.json') {
          expect(text, `${principal} / ${name}`).not.toContain('orders table');
        }
        if (response.status === 200 && name.startsWith('list')) {
          const owners = (JSON.parse(text) as { items: SessionContextJson[] }).items.map(
            (item) => item.userId,
          );
          const expectedOwners =
            principal === 'operator'
              ? name === 'list'
                ? ['alice', 'bob']
                : ['alice']
              : principal.includes('bob')
                ? ['bob']
                : ['alice'];
          expect(owners.sort(), `${principal} / ${name}`).toEqual(expectedOwners);
        }
        if (response.status === 401) {
          expect(response.headers.get('www-authenticate') ?? '', name).toMatch(
            name === 'inspector sign-in' ? /^$/ : /^Bearer realm="ctx"/,
          );
        }
        if (name === 'delete alice’s session' && response.status === 204) {
          expect(alice).toBeNull();
        }
      }
    }

    const table = [
      `| principal | ${REQUESTS.join(' | ')} |`,
      `|---|${REQUESTS.map(() => '---').join('|')}|`,
      ...Object.entries(seen).map(
        ([principal, statuses]) => `| ${principal} | ${statuses.join(' | ')} |`,
      ),
    ].join('\n');
    const file = join(tmpdir(), 'ctx-server-access-matrix.md');
    writeFileSync(file, `${table}\n`);
    console.info(`${table}\n(written to ${file})`);
    expect(seen).toEqual(EXPECTED);
  });
});
