import { randomUUID } from 'node:crypto';
import argon2 from 'argon2';
import type { FastifyInstance } from 'fastify';
import type { UserRole } from '../../src/db/schema/index.js';
import { ARGON2_PARAMS } from '../../src/modules/auth/password.js';

export const DEFAULT_PASSWORD = 'correct horse battery staple';
let defaultHash: Promise<string> | undefined;

export interface TestUser {
  id: string;
  email: string;
  name: string;
  role: UserRole;
  password: string;
  token: string;
  /** The live session `token` belongs to (its `sid` claim). */
  sessionId: string;
  /** Headers with a valid access token for this user. */
  auth: { authorization: string };
}

/**
 * Arranges a user directly in the database (with a real argon2id hash of `password`, so login works too)
 * and signs an access token for it the way the server does. Emails are unique per call.
 */
export async function createUser(
  app: FastifyInstance,
  opts: { role?: UserRole; name?: string; email?: string; password?: string; active?: boolean } = {},
): Promise<TestUser> {
  const role = opts.role ?? 'requester';
  const password = opts.password ?? DEFAULT_PASSWORD;
  if (password === DEFAULT_PASSWORD && !defaultHash) defaultHash = argon2.hash(password, ARGON2_PARAMS);
  const hash =
    password === DEFAULT_PASSWORD ? await defaultHash! : await argon2.hash(password, ARGON2_PARAMS);
  const email = opts.email ?? `${role}-${randomUUID().slice(0, 8)}@example.test`;
  const name = opts.name ?? `Test ${role}`;
  const { rows } = await app.db.$client.query<{ id: string }>(
    'INSERT INTO users (email, name, role, password_hash, active) VALUES ($1, $2, $3, $4, $5) RETURNING id',
    [email, name, role, hash, opts.active ?? true],
  );
  const id = rows[0]!.id;
  // A live session, as a login would create: access tokens name it in `sid` and die with it.
  const { rows: sessions } = await app.db.$client.query<{ id: string }>(
    "INSERT INTO sessions (user_id, expires_at) VALUES ($1, now() + interval '1 day') RETURNING id",
    [id],
  );
  const token = app.jwt.sign({ sub: id, role, typ: 'access', sid: sessions[0]!.id });
  return {
    id,
    email,
    name,
    role,
    password,
    token,
    sessionId: sessions[0]!.id,
    auth: { authorization: `Bearer ${token}` },
  };
}
