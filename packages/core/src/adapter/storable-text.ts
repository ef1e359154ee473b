import { LIMITS } from '../schema.js';

// A high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * The first `end` UTF-16 code units of `text`, one fewer when `end` would split a surrogate pair:
 * a cut never leaves half a character behind (which no UTF-8 backend can store).
 */
export function sliceAtCodePoint(text: string, end: number): string {
  const at = Math.max(0, Math.min(end, text.length));
  const before = text.charCodeAt(at - 1);
  return text.slice(0, before >= 0xd800 && before <= 0xdbff && at < text.length ? at - 1 : at);
}

/**
 * `text` cut to at most `limit` code units, ending with `… [N more characters]` when it was cut
 * (at a code-point boundary). Text that fits is returned as it is.
 */
export function cutText(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const marker = (rest: number) => `… [${rest} more characters]`;
  const kept = sliceAtCodePoint(text, Math.max(0, limit - marker(text.length).length));
  return `${kept}${marker(text.length - kept.length)}`;
}

/**
 * Text that every ctx backend stores as a message: U+0000 and lone surrogates (which PostgreSQL
 * and UTF-8 cannot hold) become U+FFFD, and text longer than `limit` (by default the message
 * limit) is cut with {@link cutText}. For integrations that turn a framework's messages into
 * ctx messages, so that a turn is never refused for its characters.
 */
export function toStorableText(text: string, limit: number = LIMITS.messageMaxLength): string {
  return cutText(text.replace(/\u0000/g, '\uFFFD').replace(LONE_SURROGATE, '\uFFFD'), limit);
}
