import { ExtractionError } from './errors.js';

// Loose models (local servers in plain JSON mode, where nothing constrains decoding to the schema)
// like to add keys the schema does not have, most often the planning keys as null in summary
// mode. A key whose value carries nothing is dropped and reported; a key that could carry
// something the model meant to say is refused, because dropping it could lose information and
// keeping it would guess at its meaning.

/** What {@link parseExtractionOutput} let through in a model's output. */
export interface ToleratedOutput {
  /**
   * Keys outside the extraction schema that the model filled with an empty value (`null`, a blank
   * string, `[]` or `{}`) and that were dropped, in the order the model wrote them.
   */
  droppedKeys: string[];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** True for values that say nothing: null, a blank string, an empty array, an empty object. */
export function isEmptyOutputValue(value: unknown): boolean {
  if (value === null) return true;
  if (typeof value === 'string') return value.trim() === '';
  if (Array.isArray(value)) return value.length === 0;
  return isPlainObject(value) && Object.keys(value).length === 0;
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string') return 'a non-empty string';
  if (isPlainObject(value)) return 'an object with content';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

/**
 * Applies the tolerance rules to a parsed model output before it is validated against the
 * extraction schema, whose keys are `schemaKeys`:
 *
 * - a key outside the schema whose value is empty (`null`, a blank string, `[]`, `{}`) is dropped
 *   and listed in `tolerated.droppedKeys`;
 * - a key outside the schema with any other value is refused: an `ExtractionError` with reason
 *   `schema_mismatch` that names every such key;
 * - keys of the schema are left alone (the schema checks them), and so is anything that is not a
 *   JSON object (the schema refuses it).
 */
export function tolerateEmptyExtras(
  value: unknown,
  schemaKeys: readonly string[],
  mode: 'planning' | 'summary',
): { value: unknown; tolerated: ToleratedOutput | undefined } {
  if (!isPlainObject(value)) return { value, tolerated: undefined };
  const known = new Set(schemaKeys);
  const kept: Record<string, unknown> = {};
  const droppedKeys: string[] = [];
  const refused: string[] = [];
  for (const [key, entry] of Object.entries(value)) {
    if (known.has(key)) kept[key] = entry;
    else if (isEmptyOutputValue(entry)) droppedKeys.push(key);
    else refused.push(`"${key}" (${describeValue(entry)})`);
  }
  if (refused.length > 0) {
    throw new ExtractionError(
      'schema_mismatch',
      `The model output has keys outside the extraction schema: ${refused.slice(0, 5).join(', ')}. In ${mode} mode the schema has only ${schemaKeys.join(', ')}; other keys are tolerated only when empty (null, "", [] or {})`,
    );
  }
  return { value: kept, tolerated: droppedKeys.length > 0 ? { droppedKeys } : undefined };
}
