import { isResponseSerializationError } from 'fastify-type-provider-zod';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createFastSerializerCompiler } from '../../src/http/serializer.js';

const person = z.object({ id: z.uuid(), name: z.string() });
const schema = z.object({
  id: z.number().int(),
  title: z.string(),
  status: z.enum(['new', 'open']),
  tags: z.array(z.string()),
  requester: person,
  assignee: person.nullable(),
  teamId: z.uuid().nullable(),
  createdAt: z.date(),
  solvedAt: z.date().nullable(),
  note: z.string().optional(),
});

type RouteSchema = Parameters<ReturnType<typeof createFastSerializerCompiler>>[0];
const route = (s: unknown) =>
  ({ schema: s, method: 'GET', url: '/things/:id', httpStatus: '200' }) as RouteSchema;

const value = {
  id: 7,
  title: 'Printer "3rd floor" \u2028 é',
  status: 'open',
  tags: ['a', 'b'],
  requester: { id: '0b7f2a4e-1c7e-4a51-9d0a-3e8a3f1f2b11', name: 'Ada' },
  assignee: null,
  teamId: null,
  createdAt: new Date('2026-11-22T10:00:00.123Z'),
  solvedAt: null,
};

describe('compiled response serializer', () => {
  for (const validate of [false, true]) {
    it(`writes what JSON.stringify of the zod output writes (validate: ${validate})`, () => {
      const serialize = createFastSerializerCompiler({ validate })(route(schema));
      expect(JSON.parse(serialize(value))).toEqual(JSON.parse(JSON.stringify(schema.parse(value))));
      const withSome = {
        ...value,
        assignee: value.requester,
        solvedAt: new Date('2026-11-23T00:00:00.000Z'),
        note: 'n',
      };
      expect(JSON.parse(serialize(withSome))).toEqual(JSON.parse(JSON.stringify(schema.parse(withSome))));
    });
  }

  it('never writes a property the schema does not declare, at any depth', () => {
    const serialize = createFastSerializerCompiler({ validate: false })(route(schema));
    const out = JSON.parse(
      serialize({
        ...value,
        passwordHash: 'argon2id$secret',
        requester: { ...value.requester, email: 'hidden@example.com' },
      }),
    );
    expect(out).not.toHaveProperty('passwordHash');
    expect(out.requester).toEqual(value.requester);
  });

  it('writes dates as ISO-8601 UTC with milliseconds', () => {
    const serialize = createFastSerializerCompiler({ validate: false })(route(schema));
    expect(JSON.parse(serialize(value)).createdAt).toBe('2026-11-22T10:00:00.123Z');
  });

  it('outside production, a response that does not match its schema fails', () => {
    const serialize = createFastSerializerCompiler({ validate: true })(route(schema));
    let thrown: unknown;
    try {
      serialize({ ...value, status: 'bogus' });
    } catch (err) {
      thrown = err;
    }
    expect(isResponseSerializationError(thrown)).toBe(true);
  });

  it('keeps zod serialization for a schema with a transform (its output is not plain data)', () => {
    const upper = z.object({ name: z.string().transform((s) => s.toUpperCase()) });
    const serialize = createFastSerializerCompiler({ validate: false })(route(upper));
    expect(() => serialize({ name: 'ada' })).toThrow(); // zod refuses to encode a unidirectional transform
  });

  it('writes records, tuples and unknown values exactly as zod does (audit changes and metadata)', () => {
    const audit = z.object({
      changes: z.record(z.string(), z.tuple([z.unknown(), z.unknown()])),
      metadata: z.record(z.string(), z.unknown()),
    });
    const event = {
      changes: { tags: [[], ['a']], status: ['new', 'open'] },
      metadata: { a: { b: [1, null] } },
    };
    for (const validate of [false, true]) {
      const serialize = createFastSerializerCompiler({ validate })(route(audit));
      expect(JSON.parse(serialize(event))).toEqual(event);
    }
  });

  it('accepts the { properties: zodSchema } form of a response schema', () => {
    const serialize = createFastSerializerCompiler({ validate: false })(route({ properties: person }));
    expect(JSON.parse(serialize({ ...value.requester, extra: 1 }))).toEqual(value.requester);
  });
});
