/**
 * Text that storage layers and drivers commonly mangle: multi-byte and astral characters, combining
 * marks, right-to-left text, escapes, and strings that look like JSON or SQL. Every one must come
 * back from a repository exactly as it went in.
 */
export const TRICKY_TEXTS = {
  emoji: 'Ship it 🚀🎉 👩‍💻 family: 👨‍👩‍👧‍👦 flags: 🇯🇵🇧🇷 skin: 👍🏽',
  astral: '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚 𠜎𠜱𠝹 (outside the BMP: surrogate pairs in UTF-16)',
  cjk: '会話の要約：ユーザーはAPIを設計している。用户正在设计接口。사용자가 API를 설계 중',
  rtl: 'مرحبا بالعالم — שלום עולם — mixed ‏RTL‎ marks',
  combining:
    'e\u0301 (decomposed é) vs \u00e9 (precomposed), Z\u0335\u0321a\u0336\u0322l\u0337g\u0338o\u0334',
  whitespace:
    'line one\nline two\r\nline three\ttabbed\u00a0nbsp\u2028line sep\u3000ideographic space ',
  quotes: `single ' double " backtick \` backslash \\ double backslash \\\\ escaped \\n literal`,
  json: '{"summary":"not really","version":99,"nested":{"a":[1,2,3]},"unicode":"\\u0000"}',
  sql: "Robert'); DROP TABLE ctx_sessions;-- ' OR '1'='1 /* comment */ $1 $$dollar$$ \\x00",
  markup: '<session_context>not a tag</session_context> <script>alert(1)</script> &amp; &lt;',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the placeholder is the point
  percent: '100% done %s %d {0} ${template} :named ?',
} as const;

/** Every tricky text joined, one per line. */
export const ALL_TRICKY_TEXT = Object.values(TRICKY_TEXTS).join('\n');

/**
 * Cuts `text` to at most `max` UTF-16 code units without splitting a surrogate pair (which would
 * leave an invalid string).
 */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/**
 * Text of exactly `length` UTF-16 code units that mixes one-, two-, three- and four-byte UTF-8
 * characters, so that byte limits and character limits differ.
 */
export function makeLongText(length: number): string {
  const pattern = 'Lorem ipsum dolor sit amet — ünïcödé 会話 🚀 ';
  const text = truncateText(pattern.repeat(Math.ceil(length / pattern.length) + 1), length);
  return text.padEnd(length, '.');
}
