import { sliceAtCodePoint } from './adapter/storable-text.js';
import type { Message } from './schema.js';

/** The content characters of `messages`: what an extraction's budget counts. */
export const contentLength = (messages: readonly Message[]) =>
  messages.reduce((total, message) => total + message.content.length, 0);

/** What a piece of a message longer than one extraction's budget starts with. */
const pieceLabel = (index: number, count: number) =>
  `[part ${index} of ${count} of one long message] `;

/** A message longer than `budget` in pieces, each labelled, none longer than `budget`. */
function pieces(message: Message, budget: number): Message[] {
  // Leaves room for the longest label any piece may get (the count is not known yet).
  const room = Math.max(2, budget - pieceLabel(999_999, 999_999).length);
  const texts: string[] = [];
  for (let rest = message.content; rest.length > 0; ) {
    // Never splits a surrogate pair, so every piece stays valid text.
    const piece = sliceAtCodePoint(rest, room);
    texts.push(piece);
    rest = rest.slice(piece.length);
  }
  return texts.map((text, index) => ({
    ...message,
    content: `${pieceLabel(index + 1, texts.length)}${text}`,
  }));
}

/**
 * Splits the messages of one extraction into consecutive parts of at most `budget` content
 * characters, oldest first: between messages where it can, and a message longer than the budget
 * into labelled pieces. Every character is in exactly one part, in order; messages that fit come
 * back as one part, unchanged.
 */
export function splitForExtraction(messages: readonly Message[], budget: number): Message[][] {
  if (contentLength(messages) <= budget) return [[...messages]];
  const parts: Message[][] = [];
  let part: Message[] = [];
  let chars = 0;
  const close = () => {
    if (part.length > 0) parts.push(part);
    part = [];
    chars = 0;
  };
  for (const message of messages) {
    if (message.content.length > budget) {
      close();
      for (const piece of pieces(message, budget)) parts.push([piece]);
      continue;
    }
    if (chars + message.content.length > budget) close();
    part.push(message);
    chars += message.content.length;
  }
  close();
  return parts;
}
