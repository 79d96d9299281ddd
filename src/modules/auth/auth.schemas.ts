import { z } from 'zod';
import { emailSchema, nameSchema, newPasswordSchema, userSchema } from '../users/users.schemas.js';

/** Strict: a `role` (or any other unknown field) is refused with 422, never ignored. */
export const registerBody = z.strictObject({
  email: emailSchema,
  password: newPasswordSchema,
  name: nameSchema,
});

/** Deliberately loose on format: a malformed email is just a failed login, not a hint. */
export const loginBody = z.strictObject({
  email: z.string().trim().min(1).max(254),
  password: z.string().min(1).max(1024),
});

export const refreshBody = z.strictObject({
  refreshToken: z.string().min(1).max(512),
});

export const updateMeBody = z
  .strictObject({
    name: nameSchema.optional(),
    currentPassword: z.string().min(1).max(1024).optional(),
    newPassword: newPasswordSchema.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'send at least one of name, newPassword' });

export const tokenPairSchema = z
  .object({
    accessToken: z.string().describe('HS256 JWT; send as Authorization: Bearer <accessToken>'),
    refreshToken: z.string().describe('Opaque; single use (rotated by POST /auth/refresh)'),
    tokenType: z.literal('Bearer'),
    expiresIn: z.number().int().describe('Lifetime of the access token in seconds'),
    user: userSchema,
  })
  .meta({ id: 'TokenPair' });
