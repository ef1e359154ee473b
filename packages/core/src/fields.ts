import { z } from 'zod';
import { ExtractionError, ValidationError, type ValidationIssue } from './errors.js';
import type { JsonSchema } from './extraction.js';
import {
  type JsonValue,
  type StoredFields,
  storedFieldsProblem,
  toValidationIssues,
} from './schema.js';

// Custom fields: the application's zod object schema, compiled once into what the extractor,
// the update policy, the renderer and the store's typed reads need.

/** The schema of an application's custom fields: a zod 4 object, every field described. */
export type FieldsSchema = z.ZodObject;

/**
 * The typed `fields` of a snapshot read through a store with `fields: S`: every declared field is
 * present, `null` while it has no value.
 */
export type FieldValues<S extends FieldsSchema> = {
  -readonly [K in keyof z.output<S>]-?: Exclude<z.output<S>[K], undefined> | null;
};

/**
 * The custom fields as an extractor needs them: plain JSON, so a request can be copied, logged or
 * sent anywhere. Model adapters pass it to `getExtractionJsonSchema` and `parseExtractionOutput`.
 */
export interface ExtractionFields {
  /**
   * The JSON schema of the `fields` property of the extraction output: an object whose every
   * property is required and nullable, `additionalProperties: false` (OpenAI strict mode and
   * Gemini accept it as is).
   */
  schema: JsonSchema;
}

/** Per-field options, given as zod metadata: `.meta({ title: 'Target platform', ctx: { clearable: true } })`. */
export interface FieldMeta {
  /** The label the rendered block shows. @default the field's key */
  title?: string;
  ctx?: {
    /**
     * `true`: a `null` from the model clears the field. Otherwise (the default) a field keeps its
     * value when the model omits it or returns `null`; only a new value replaces it.
     * @default false
     */
    clearable?: boolean;
  };
}

/** One declared field. */
export interface FieldDefinition {
  key: string;
  /** `.meta({ title })`, or the key. */
  label: string;
  /** `.describe()`: what the field holds, as the model is told. */
  description: string;
  clearable: boolean;
  /** The field's schema without its `nullable`/`optional` wrappers: what a value must match. */
  value: z.ZodType;
}

/** A fields schema compiled by {@link compileFields}. */
export interface CompiledFields {
  schema: FieldsSchema;
  definitions: FieldDefinition[];
  extraction: ExtractionFields;
}

/** At most this many custom fields (OpenAI strict mode allows 100 properties in all). */
export const MAX_FIELDS = 50;

const KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const SCALAR_TYPES = new Set(['string', 'number', 'integer', 'boolean']);
const SUPPORTED =
  'supported: string, number, integer, boolean, enum or literal of strings, an array of one of those; optionally nullable or optional';

const FIELDS_DESCRIPTION =
  "The application's custom fields. For each one: its current value, or the new value when the conversation changed it; null while the conversation has not given one.";

type Internals = { _zod?: { def?: { type?: string; innerType?: unknown; shape?: unknown } } };
const defOf = (schema: unknown) => (schema as Internals)?._zod?.def;

function metaOf(schema: z.ZodType): Record<string, unknown> {
  try {
    return (schema.meta() as Record<string, unknown> | undefined) ?? {};
  } catch {
    return {};
  }
}

// A value schema that zod's JSON schema of the field turns into the subset every provider takes.
function toProviderSchema(json: Record<string, unknown>, nested: boolean): JsonSchema | null {
  const type = json.type;
  if (json.const !== undefined) {
    return type === 'string' && typeof json.const === 'string'
      ? { type: 'string', enum: [json.const] }
      : null;
  }
  if (type === 'string' && Array.isArray(json.enum)) {
    const values = json.enum;
    if (values.length === 0 || !values.every((value) => typeof value === 'string')) return null;
    return { type: 'string', enum: values };
  }
  if (typeof type === 'string' && SCALAR_TYPES.has(type) && json.enum === undefined) {
    return { type };
  }
  if (type === 'array' && !nested && typeof json.items === 'object' && json.items !== null) {
    const items = toProviderSchema(json.items as Record<string, unknown>, true);
    return items ? { type: 'array', items } : null;
  }
  return null;
}

function compileField(key: string, field: unknown, issues: ValidationIssue[]) {
  const path = `fields.${key}`;
  if (!KEY_PATTERN.test(key)) {
    issues.push({ path, message: 'a field key must match /^[A-Za-z_][A-Za-z0-9_]{0,63}$/' });
    return undefined;
  }
  // Unwrap nullable/optional (a field is null until set anyway); metadata of the outer wrappers
  // wins over the inner schema's.
  let inner = field as z.ZodType;
  const metas: Record<string, unknown>[] = [];
  for (;;) {
    const def = defOf(inner);
    if (!def) break;
    metas.push(metaOf(inner));
    if (def.type !== 'nullable' && def.type !== 'optional') break;
    inner = def.innerType as z.ZodType;
  }
  if (!defOf(inner)) {
    issues.push({ path, message: 'not a zod 4 schema' });
    return undefined;
  }
  const meta = Object.assign({}, ...metas.reverse()) as FieldMeta & { description?: unknown };
  let json: Record<string, unknown>;
  try {
    json = z.toJSONSchema(inner, { io: 'output', unrepresentable: 'throw' }) as Record<
      string,
      unknown
    >;
  } catch (error) {
    issues.push({
      path,
      message: `cannot be expressed as JSON schema (${error instanceof Error ? error.message : String(error)}); ${SUPPORTED}`,
    });
    return undefined;
  }
  const described = meta.description ?? json.description;
  const description = typeof described === 'string' ? described.trim() : '';
  if (!description) {
    issues.push({ path, message: "has no description: add .describe('what it holds')" });
    return undefined;
  }
  const provider = toProviderSchema(json, false);
  if (!provider) {
    issues.push({ path, message: `type not supported (${SUPPORTED})` });
    return undefined;
  }
  const title = typeof meta.title === 'string' && meta.title.trim() ? meta.title.trim() : key;
  const clearable = meta.ctx?.clearable === true;
  const nullableType = [provider.type as string, 'null'];
  const property: JsonSchema = {
    ...provider,
    type: nullableType,
    ...(Array.isArray(provider.enum) ? { enum: [...provider.enum, null] } : {}),
    description,
  };
  const definition: FieldDefinition = { key, label: title, description, clearable, value: inner };
  return { definition, property };
}

const compiled = new WeakMap<object, CompiledFields>();

/**
 * Checks an application's fields schema and compiles it; throws `INVALID_CONFIG` listing every
 * problem: not a zod 4 object, a key that is not an identifier, a field without `.describe()`, a
 * type outside the subset every provider's structured output takes (strings, numbers, integers,
 * booleans, enums of strings, arrays of those; `.nullable()`/`.optional()` allowed), more than
 * {@link MAX_FIELDS} fields. Cached per schema object.
 */
export function compileFields(schema: unknown): CompiledFields {
  const cached = typeof schema === 'object' && schema !== null ? compiled.get(schema) : undefined;
  if (cached) return cached;
  const def = defOf(schema);
  if (def?.type !== 'object' || typeof def.shape !== 'object' || def.shape === null) {
    throw new ValidationError(
      'INVALID_CONFIG',
      'Invalid fields: expected a zod 4 object schema, e.g. z.object({ platform: z.string().describe(…) })',
      { issues: [{ path: 'fields', message: 'not a zod 4 object schema' }] },
    );
  }
  const shape = def.shape as Record<string, unknown>;
  const issues: ValidationIssue[] = [];
  const keys = Object.keys(shape);
  if (keys.length > MAX_FIELDS) {
    issues.push({ path: 'fields', message: `${keys.length} fields, more than ${MAX_FIELDS}` });
  }
  const definitions: FieldDefinition[] = [];
  const properties: Record<string, JsonSchema> = {};
  for (const key of keys) {
    const result = compileField(key, shape[key], issues);
    if (!result) continue;
    definitions.push(result.definition);
    properties[key] = result.property;
  }
  if (issues.length > 0) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Invalid fields: ${issues.map((issue) => `${issue.path} ${issue.message}`).join('; ')}`,
      { issues },
    );
  }
  const result: CompiledFields = {
    schema: schema as FieldsSchema,
    definitions,
    extraction: {
      schema: {
        type: 'object',
        description: FIELDS_DESCRIPTION,
        properties,
        required: keys,
        additionalProperties: false,
      },
    },
  };
  compiled.set(schema as object, result);
  return result;
}

const mismatch = (message: string, cause?: unknown) =>
  new ExtractionError('schema_mismatch', message, cause === undefined ? undefined : { cause });

/**
 * The update policy of custom fields: the stored fields with a draft's values applied. A field
 * the draft omits or sets to `null` keeps its value (a clearable one is cleared by `null`); a
 * value is validated by the field's schema. Stored keys the schema no longer declares are kept
 * untouched. Returns `null` when no field has a value. Throws `EXTRACTION_FAILED`
 * (`schema_mismatch`) for an undeclared key, an invalid value or fields too large to store.
 */
export function applyFieldsPolicy(
  previous: StoredFields | null | undefined,
  draft: Record<string, unknown> | null | undefined,
  fields: CompiledFields | undefined,
): StoredFields | null {
  const next: StoredFields = { ...(previous ?? {}) };
  const definitions = new Map(
    fields?.definitions.map((definition) => [definition.key, definition]),
  );
  for (const [key, value] of Object.entries(draft ?? {})) {
    const definition = definitions.get(key);
    if (!definition) {
      if (value === null || value === undefined) continue;
      throw mismatch(`The extractor returned an undeclared custom field: fields.${key}`);
    }
    if (value === null || value === undefined) {
      if (value === null && definition.clearable) delete next[key];
      continue;
    }
    const parsed = definition.value.safeParse(value);
    if (!parsed.success) {
      const issues = toValidationIssues(parsed.error)
        .slice(0, 3)
        .map((issue) =>
          issue.path === '(root)' ? issue.message : `${issue.path}: ${issue.message}`,
        );
      throw mismatch(
        `The extractor returned an invalid value for custom field fields.${key}: ${issues.join('; ')}`,
        parsed.error,
      );
    }
    next[key] = parsed.data as JsonValue;
  }
  if (Object.keys(next).length === 0) return null;
  const problem = storedFieldsProblem(next);
  if (problem) throw mismatch(`The custom fields cannot be stored: ${problem}`);
  return next;
}

/** A stored field value that the schema no longer accepts. */
export interface InvalidField {
  field: string;
  message: string;
}

/**
 * The typed view of stored fields: every declared field in schema order (`null` when unset), or
 * `null` when none has a value. Stored keys the schema no longer declares are left out; a stored
 * value that no longer validates reads as `null` and is listed in `invalid` (never thrown).
 */
export function readFields(
  stored: StoredFields | null | undefined,
  fields: CompiledFields,
): { fields: Record<string, unknown> | null; invalid: InvalidField[] } {
  const invalid: InvalidField[] = [];
  if (!stored) return { fields: null, invalid };
  const view: Record<string, unknown> = {};
  let set = 0;
  for (const definition of fields.definitions) {
    const value = Object.hasOwn(stored, definition.key) ? stored[definition.key] : null;
    if (value === null || value === undefined) {
      view[definition.key] = null;
      continue;
    }
    const parsed = definition.value.safeParse(value);
    if (parsed.success) {
      view[definition.key] = parsed.data;
      set += 1;
    } else {
      view[definition.key] = null;
      invalid.push({
        field: definition.key,
        message: toValidationIssues(parsed.error)
          .map((issue) =>
            issue.path === '(root)' ? issue.message : `${issue.path}: ${issue.message}`,
          )
          .join('; '),
      });
    }
  }
  return { fields: set > 0 ? view : null, invalid };
}

// What a model may return for the fields: built from the JSON schema (plain data), so a parser
// needs no zod schema of the application. The store validates again with the application's own.
const outputSchemas = new WeakMap<object, z.ZodType>();

function valueSchema(json: Record<string, unknown>): z.ZodType {
  const type = Array.isArray(json.type) ? json.type[0] : json.type;
  switch (type) {
    case 'string': {
      const values = Array.isArray(json.enum)
        ? json.enum.filter((value): value is string => typeof value === 'string')
        : [];
      return values.length > 0 ? z.enum(values as [string, ...string[]]) : z.string();
    }
    case 'number':
      return z.number();
    case 'integer':
      return z.number().int();
    case 'boolean':
      return z.boolean();
    case 'array':
      return z.array(valueSchema((json.items ?? {}) as Record<string, unknown>));
    default:
      return z.never();
  }
}

/**
 * The zod schema of the `fields` property of a model's output, built from
 * {@link ExtractionFields.schema}: each declared field optional and nullable, no other key.
 */
export function fieldsOutputSchema(extraction: ExtractionFields): z.ZodType {
  const cached = outputSchemas.get(extraction.schema);
  if (cached) return cached;
  const properties = (extraction.schema.properties ?? {}) as Record<
    string,
    Record<string, unknown>
  >;
  const shape: Record<string, z.ZodType> = {};
  for (const [key, property] of Object.entries(properties)) {
    shape[key] = valueSchema(property).nullable().optional();
  }
  const schema = z.object(shape).strict().nullable().optional();
  outputSchemas.set(extraction.schema, schema);
  return schema;
}

/** The keys of the declared fields, from an {@link ExtractionFields}. */
export function extractionFieldKeys(extraction: ExtractionFields): string[] {
  return Object.keys((extraction.schema.properties ?? {}) as Record<string, unknown>);
}
