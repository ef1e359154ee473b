import { ContextError, type ContextErrorCode, type SessionContext } from '@ctx/core';
import { canonicalFields } from '@ctx/core/adapter';
import { expect } from 'vitest';
import type { RawSnapshot } from './harness.js';

/** The fields of a {@link SessionContext}, in a stable order. */
export const SNAPSHOT_FIELDS = [
  'sessionId',
  'userId',
  'summary',
  'goal',
  'plan',
  'progress',
  'createdAt',
  'updatedAt',
  'version',
  'fields',
] as const;

/** Fails the current test with `message`. */
export function fail(message: string): never {
  throw new Error(message);
}

function preview(text: string, index: number): string {
  return JSON.stringify(text.slice(Math.max(0, index - 20), index + 20));
}

/** Fails with a short message naming the first differing character, instead of dumping 100 KB. */
export function expectSameText(actual: unknown, expected: string | null, label: string): void {
  if (expected === null) {
    expect(actual, `${label} must be null`).toBeNull();
    return;
  }
  expect(typeof actual, `${label} must be a string`).toBe('string');
  const text = actual as string;
  if (text === expected) return;
  let index = 0;
  while (index < text.length && text[index] === expected[index]) index += 1;
  fail(
    `${label} changed in storage: lengths ${text.length} (stored) vs ${expected.length} (saved); first difference at index ${index}: stored ${preview(text, index)}, saved ${preview(expected, index)}`,
  );
}

function expectSameList(actual: unknown, expected: string[] | null, label: string): void {
  if (expected === null) {
    expect(actual, `${label} must be null (not an empty array)`).toBeNull();
    return;
  }
  expect(Array.isArray(actual), `${label} must be an array (not null)`).toBe(true);
  const list = actual as unknown[];
  expect(list.length, `${label} length`).toBe(expected.length);
  expected.forEach((item, index) => {
    expectSameText(list[index], item, `${label}[${index}]`);
  });
}

function expectSameDate(actual: unknown, expected: Date, label: string): void {
  expect(actual, `${label} must be a Date`).toBeInstanceOf(Date);
  expect(
    (actual as Date).getTime(),
    `${label} must be stored to the exact millisecond (saved ${expected.toISOString()}, got ${(actual as Date).toISOString()})`,
  ).toBe(expected.getTime());
}

/** Compares every field of a snapshot read back with the one saved, with a precise message. */
export function expectSameSnapshot(
  actual: SessionContext | null | undefined,
  expected: SessionContext,
  where = 'snapshot',
): void {
  expect(actual, `${where} must exist`).toBeTruthy();
  const snapshot = actual as SessionContext;
  expectSameText(snapshot.sessionId, expected.sessionId, `${where}.sessionId`);
  expectSameText(snapshot.userId, expected.userId, `${where}.userId`);
  expectSameText(snapshot.summary, expected.summary, `${where}.summary`);
  expectSameText(snapshot.goal, expected.goal, `${where}.goal`);
  expectSameList(snapshot.plan, expected.plan, `${where}.plan`);
  expectSameList(snapshot.progress, expected.progress, `${where}.progress`);
  expectSameDate(snapshot.createdAt, expected.createdAt, `${where}.createdAt`);
  expectSameDate(snapshot.updatedAt, expected.updatedAt, `${where}.updatedAt`);
  expect(snapshot.version, `${where}.version`).toBe(expected.version);
  expectSameFields(snapshot.fields, expected.fields, `${where}.fields`);
}

/**
 * Compares custom fields with what was saved (`undefined` saved means null): equal JSON, key for
 * key, in canonical key order (what every repository returns).
 */
export function expectSameFields(actual: unknown, expected: unknown, label: string): void {
  const want = canonicalFields(expected as SessionContext['fields']);
  expect(actual ?? null, `${label}`).toStrictEqual(want);
  if (actual !== null && actual !== undefined) {
    expect(JSON.stringify(actual), `${label}: keys in canonical (code-unit) order`).toBe(
      JSON.stringify(want),
    );
  }
}

/** Compares a row read through the driver (out of band) with the snapshot that was saved. */
export function expectRawMatches(raw: RawSnapshot | null, expected: SessionContext): void {
  expect(raw, 'readRaw must find the row that save() reported as written').not.toBeNull();
  const row = raw as RawSnapshot;
  expectSameText(row.sessionId, expected.sessionId, 'raw.sessionId');
  expectSameText(row.userId, expected.userId, 'raw.userId');
  expectSameText(row.summary, expected.summary, 'raw.summary');
  expectSameText(row.goal, expected.goal, 'raw.goal');
  expectSameList(row.plan, expected.plan, 'raw.plan');
  expectSameList(row.progress, expected.progress, 'raw.progress');
  expect(row.createdAt, 'raw.createdAt (epoch ms)').toBe(expected.createdAt.getTime());
  expect(row.updatedAt, 'raw.updatedAt (epoch ms)').toBe(expected.updatedAt.getTime());
  expect(row.version, 'raw.version').toBe(expected.version);
  if (row.fields !== undefined) {
    expect(row.fields, 'raw.fields').toEqual(canonicalFields(expected.fields));
  }
}

/**
 * Expects `action` to throw a ctx error with `code` (checked with `ContextError.isInstance`, so it
 * works across duplicate installs) and returns it.
 */
export async function expectContextError(
  action: () => unknown,
  code: ContextErrorCode,
  what = 'the call',
): Promise<ContextError> {
  let thrown = false;
  let error: unknown;
  try {
    await action();
  } catch (caught) {
    thrown = true;
    error = caught;
  }
  if (!thrown) fail(`${what} must throw ${code}, but it resolved`);
  if (!ContextError.isInstance(error)) {
    fail(`${what} must throw a ContextError with code ${code}, but threw ${describeError(error)}`);
  }
  expect(error.code, `${what} threw ${describeError(error)}`).toBe(code);
  return error;
}

/** A one-line description of anything thrown, for failure messages. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${code === undefined ? '' : ` [${String(code)}]`}: ${error.message}`;
  }
  return String(error);
}
