import { z } from 'zod';
import {
  emailSchema,
  nameSchema,
  newPasswordSchema,
  USER_EXAMPLE,
  userSchema,
} from '../users/users.schemas.js';

/** Strict: a `role` (or any other unknown field) is refused with 422, never ignored. */
export const registerBody = z
  .strictObject({
    email: emailSchema,
    password: newPasswordSchema,
    name: nameSchema,
  })
  .meta({
    example: { email: 'rita@example.com', password: 'correct horse battery staple', name: 'Rita Requester' },
  });

/** Deliberately loose on format: a malformed email is just a failed login, not a hint. */
export const loginBody = z
  .strictObject({
    email: z.string().trim().min(1).max(254),
    password: z.string().min(1).max(1024),
  })
  .meta({ example: { email: 'rita@example.com', password: 'correct horse battery staple' } });

export const refreshBody = z
  .strictObject({
    refreshToken: z.string().min(1).max(512),
  })
  .meta({ example: { refreshToken: 'rt_2YkVn6b0yq3kqQ0w9x7m1Zb8cH4tLrUe' } });

export const updateMeBody = z
  .strictObject({
    name: nameSchema.optional(),
    currentPassword: z.string().min(1).max(1024).optional(),
    newPassword: newPasswordSchema.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'send at least one of name, newPassword' })
  .meta({
    example: {
      name: 'Rita R.',
      currentPassword: 'correct horse battery staple',
      newPassword: 'a much longer passphrase 2026',
    },
  });

export const tokenPairSchema = z
  .object({
    accessToken: z.string().describe('HS256 JWT; send as Authorization: Bearer <accessToken>'),
    refreshToken: z.string().describe('Opaque; single use (rotated by POST /auth/refresh)'),
    tokenType: z.literal('Bearer'),
    expiresIn: z.number().int().describe('Lifetime of the access token in seconds'),
    user: userSchema,
  })
  .meta({
    id: 'TokenPair',
    example: {
      accessToken: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwYjZmMWMxZSJ9.c2lnbmF0dXJl',
      refreshToken: 'rt_2YkVn6b0yq3kqQ0w9x7m1Zb8cH4tLrUe',
      tokenType: 'Bearer',
      expiresIn: 900,
      user: USER_EXAMPLE,
    },
  });
