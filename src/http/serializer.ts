import { isDeepStrictEqual } from 'node:util';
import fastJsonStringify from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify';
import { createSerializerCompiler, ResponseSerializationError } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { $ZodType, safeEncode } from 'zod/v4/core';

type JsonSchema = Record<string, unknown>;

/** Zod schema types whose output is not plain data: a compiled stringifier cannot reproduce them. */
const NOT_PLAIN = new Set([
  'transform',
  'custom',
  'function',
  'promise',
  'map',
  'set',
  'bigint',
  'symbol',
  'nan',
  'void',
  'lazy',
  // fast-json-stringify 7 refuses valid values of tuple schemas whose items are {} (z.unknown()).
  'tuple',
]);

function resolveSchema(maybe: unknown): $ZodType | null {
  if (maybe instanceof $ZodType) return maybe;
  const props = (maybe as { properties?: unknown } | null)?.properties;
  return props instanceof $ZodType ? props : null;
}

/**
 * `{anyOf: [X, {type: 'null'}]}` → X with `type: [X.type, 'null']`: fast-json-stringify answers a
 * nullable type with a null check, but an anyOf with a schema validation per value.
 */
function collapseNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(collapseNullable);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(node)) out[k] = collapseNullable(v);
  const anyOf = out.anyOf as JsonSchema[] | undefined;
  if (Array.isArray(anyOf) && anyOf.length === 2) {
    const nonNull = anyOf.filter((s) => s.type !== 'null');
    const only = nonNull[0];
    if (nonNull.length === 1 && only && typeof only.type === 'string' && !only.anyOf && !only.enum) {
      const { anyOf: _drop, ...rest } = out;
      return { ...rest, ...only, type: [only.type, 'null'] };
    }
  }
  return out;
}

/**
 * JSON Schema of a response's OUTPUT, or null when it holds something only zod can produce
 * (a transform, a codec, ...). Dates become `string`/`date-time` (serialized with toISOString).
 */
export function toStringifySchema(schema: $ZodType): JsonSchema | null {
  let plain = true;
  const json = z.toJSONSchema(schema, {
    io: 'output',
    target: 'draft-7',
    unrepresentable: 'any',
    cycles: 'throw',
    reused: 'inline',
    override: (ctx) => {
      const def = ctx.zodSchema._zod.def as { type: string; transform?: unknown; reverseTransform?: unknown };
      if (NOT_PLAIN.has(def.type) || (def.type === 'pipe' && (def.transform || def.reverseTransform))) {
        plain = false;
      }
      if (def.type === 'date') {
        ctx.jsonSchema.type = 'string';
        ctx.jsonSchema.format = 'date-time';
      }
    },
  }) as JsonSchema;
  if (!plain) return null;
  delete json.$schema;
  return collapseNullable(json) as JsonSchema;
}

const zodSerializerCompiler = createSerializerCompiler({});

/**
 * Response serialization compiled once per route and status from its zod schema
 * (fast-json-stringify): only the declared properties are written, so a field that is not in the
 * schema (a password hash, an internal column) can never leak — as with zod's own serializer, but
 * several times cheaper than validating every response with zod and then JSON.stringify-ing it.
 * Schemas with transforms, codecs or tuples keep zod's serializer, and so does any single response
 * the compiled function cannot write.
 *
 * `validate` (every environment but production) additionally checks each response against the zod
 * schema — failing it with the same ResponseSerializationError as fastify-type-provider-zod — and
 * that the compiled output means exactly what zod's would: the test suite proves both on every
 * response it sees.
 */
export function createFastSerializerCompiler(opts: {
  validate: boolean;
}): FastifySerializerCompiler<unknown> {
  const fallback = zodSerializerCompiler as FastifySerializerCompiler<unknown>;
  return (route) => {
    const schema = resolveSchema(route.schema);
    let json: JsonSchema | null = null;
    let stringify: ((data: unknown) => string) | undefined;
    try {
      json = schema ? toStringifySchema(schema) : null;
      if (json) stringify = fastJsonStringify(json);
    } catch {
      stringify = undefined;
    }
    const viaZod = fallback(route);
    if (!schema || !stringify) return viaZod;
    const fast = stringify;
    const write = (data: unknown): string => {
      try {
        return fast(data);
      } catch {
        return viaZod(data);
      }
    };
    if (!opts.validate) return write;
    return (data: unknown) => {
      const checked = safeEncode(schema, data);
      if (checked.error) {
        throw new ResponseSerializationError(route.method, route.url, { cause: checked.error });
      }
      const out = write(data);
      const expected = JSON.stringify(checked.data);
      if (out !== expected && !isDeepStrictEqual(JSON.parse(out), JSON.parse(expected))) {
        throw new Error(
          `compiled serializer of ${route.method} ${route.url} wrote ${out.slice(0, 300)} where zod writes ${expected.slice(0, 300)}`,
        );
      }
      return out;
    };
  };
}
