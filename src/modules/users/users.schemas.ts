import { z } from 'zod';
import type { UserRow } from '../../db/schema/index.js';

export const roleSchema = z.enum(['requester', 'agent', 'admin']).describe('requester | agent | admin');

/** The public shape of a user: never the password hash. */
/** The example user of the API documents (the User schema and responses that embed one). */
export const USER_EXAMPLE = {
  id: '0b6f1c1e-6a3e-4d8e-9a52-3c1f2d4b5a60',
  email: 'rita@example.com',
  name: 'Rita Requester',
  role: 'requester',
  active: true,
  createdAt: '2026-11-22T10:00:00.000Z',
} as const;

export const userSchema = z
  .object({
    id: z.uuid(),
    email: z.string(),
    name: z.string(),
    role: roleSchema,
    active: z.boolean(),
    createdAt: z.date(),
  })
  .meta({ id: 'User', example: USER_EXAMPLE });
export type UserDto = z.infer<typeof userSchema>;

export function toUserDto(row: UserRow): UserDto {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    active: row.active,
    createdAt: row.createdAt,
  };
}

/** Trimmed, RFC-valid email, at most 254 characters. Stored as given; compared case-insensitively. */
export const emailSchema = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email({ message: 'must be a valid email address' }));
export const nameSchema = z.string().trim().min(1).max(100);
/**
 * The policy (length in code points, common passwords) is checked by the service → 422 WEAK_PASSWORD;
 * the schema only bounds the input so nothing huge ever reaches the hasher.
 */
export const newPasswordSchema = z
  .string()
  .min(1)
  .max(1024)
  .describe('12..256 characters, any Unicode; common passwords are refused (422 WEAK_PASSWORD)');

export const userIdParams = z.strictObject({ id: z.uuid() });

export const createUserBody = z
  .strictObject({
    email: emailSchema,
    name: nameSchema,
    role: roleSchema,
    password: newPasswordSchema,
  })
  .meta({
    example: {
      email: 'ada@example.com',
      name: 'Ada Agent',
      role: 'agent',
      password: 'initial passphrase 2026',
    },
  });

export const updateUserBody = z
  .strictObject({
    name: nameSchema.optional(),
    role: roleSchema.optional(),
    active: z.boolean().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'send at least one of name, role, active' })
  .meta({ example: { role: 'admin', active: true } });

const boolQuery = z.enum(['true', 'false']).transform((v) => v === 'true');

export const listUsersQuery = z.strictObject({
  role: roleSchema.optional(),
  active: boolQuery.optional(),
  q: z.string().trim().min(1).max(100).optional().describe('Case-insensitive substring of name or email'),
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().min(1).max(2048).optional().describe('Opaque; the nextCursor of the previous page'),
});

export const userListSchema = z.object({ data: z.array(userSchema), nextCursor: z.string().nullable() });
