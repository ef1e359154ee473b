/** The tag that wraps the rendered block in a system prompt. */
export const SESSION_CONTEXT_TAG = 'session_context';

/** Tags with structural meaning in what ctx sends to models: the rendered block and the extraction prompt. */
export const RESERVED_TAGS = [
  SESSION_CONTEXT_TAG,
  'previous_context',
  'transcript',
  'message',
  'instructions',
] as const;

const RESERVED_TAG_PATTERN = new RegExp(
  `<(\\s*/?\\s*)(${RESERVED_TAGS.join('|')})(?![A-Za-z0-9_-])`,
  'gi',
);

/**
 * Neutralises text that came from users or models so that it cannot open or close one of ctx's
 * structural tags (`<session_context>`, `</transcript>`, …): the `<` of such a tag becomes `‹`
 * (U+2039). Everything else is left exactly as it was.
 */
export function neutralizeTags(text: string): string {
  return text.replace(RESERVED_TAG_PATTERN, '‹$1$2');
}

/** Collapses every run of whitespace (newlines included) to one space, and trims. */
export function toSingleLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
