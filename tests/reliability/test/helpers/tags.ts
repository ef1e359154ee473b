/**
 * Counts everything in `text` that a model could read as an opening or closing `tag`: a `<`, an
 * optional `/`, then the tag name in any case, with any whitespace in between, not followed by
 * another name character. Deliberately more lenient than ctx's neutraliser, so that a variant it
 * misses is counted here.
 */
export function countTagLike(text: string, tag: string): number {
  const pattern = new RegExp(`<\\s*/?\\s*${tag}(?![A-Za-z0-9_-])`, 'gi');
  return text.match(pattern)?.length ?? 0;
}

/** Like {@link countTagLike}, for opening tags only. */
export function countOpeningTagLike(text: string, tag: string): number {
  const pattern = new RegExp(`<\\s*${tag}(?![A-Za-z0-9_-])`, 'gi');
  return text.match(pattern)?.length ?? 0;
}

/** Like {@link countTagLike}, for closing tags only. */
export function countClosingTagLike(text: string, tag: string): number {
  const pattern = new RegExp(`<\\s*/\\s*${tag}(?![A-Za-z0-9_-])`, 'gi');
  return text.match(pattern)?.length ?? 0;
}
