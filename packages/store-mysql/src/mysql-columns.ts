/** BIGINT columns arrive as numbers or strings depending on the pool's supportBigNumbers. */
export const integer = (value: unknown): number => Number(value);

/** VARBINARY columns arrive as Buffers of UTF-8. */
export const text = (value: unknown): string =>
  Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
