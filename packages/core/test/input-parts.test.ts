import { describe, expect, it } from 'vitest';
import { splitForExtraction } from '../src/input-parts.js';
import type { Message } from '../src/schema.js';

const user = (content: string): Message => ({ role: 'user', content });
const assistant = (content: string): Message => ({ role: 'assistant', content });
const LABEL = /^\[part (\d+) of (\d+) of one long message\] /;
const chars = (part: Message[]) =>
  part.reduce((total, message) => total + message.content.length, 0);

describe('splitForExtraction', () => {
  it('leaves messages that fit as one part, unchanged', () => {
    const messages = [user('a'.repeat(600)), assistant('b'.repeat(400))];
    expect(splitForExtraction(messages, 1_000)).toEqual([messages]);
  });

  it('splits between messages, oldest first, each part within the budget', () => {
    const messages = Array.from({ length: 7 }, (_, index) =>
      (index % 2 ? assistant : user)(`${index}`.repeat(300)),
    );
    const parts = splitForExtraction(messages, 1_000);
    expect(parts.map((part) => part.length)).toEqual([3, 3, 1]);
    expect(parts.flat()).toEqual(messages);
    for (const part of parts) expect(chars(part)).toBeLessThanOrEqual(1_000);
  });

  it('cuts a message longer than the budget into labelled pieces that add up to it exactly', () => {
    // The emoji straddles the first cut (956 characters are left after the longest label).
    const long = `${'é'.repeat(955)}😀${'z'.repeat(1_500)}`;
    const messages = [user('before'), assistant(long), user('after')];
    const parts = splitForExtraction(messages, 1_000);
    expect(parts[0]).toEqual([user('before')]);
    expect(parts.at(-1)).toEqual([user('after')]);
    const pieces = parts.slice(1, -1).map((part) => {
      expect(part).toHaveLength(1);
      expect(part[0]?.role).toBe('assistant');
      expect(chars(part)).toBeLessThanOrEqual(1_000);
      return part[0]?.content ?? '';
    });
    expect(pieces.length).toBe(3);
    pieces.forEach((piece, index) => {
      expect(piece.match(LABEL)?.slice(1)).toEqual([`${index + 1}`, '3']);
    });
    expect(pieces.map((piece) => piece.replace(LABEL, '')).join('')).toBe(long);
    // No piece ends or starts inside a surrogate pair: the first piece stops before the emoji.
    expect(pieces[1]?.replace(LABEL, '').startsWith('😀')).toBe(true);
    const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
    for (const piece of pieces) expect(piece).not.toMatch(loneSurrogate);
  });
});
