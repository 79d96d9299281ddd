/**
 * Runs the typed-client program (program.ts) against a live server on a fresh database and checks
 * what it got back. Part of `npm run test:client`, after the type-check of the same program.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApiServer, tempDatabase } from '../../scripts/lib/harness.js';
import { mainFlow } from './program.js';

const ADMIN = { email: 'client-admin@example.test', password: 'Client-Admin-Pass-2026' };

test('the typed client logs in, creates, lists and reads a ticket against a live server', async (t) => {
  const db = await tempDatabase();
  t.after(() => db.drop());
  const api = await startApiServer({
    name: 'client',
    databaseUrl: db.url,
    env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password },
  });
  t.after(() => api.stop());

  const result = await mainFlow(api.baseUrl, ADMIN);
  assert.equal(result.user.role, 'admin');
  assert.equal(result.created.status, 'new');
  assert.equal(result.created.priority, 'urgent');
  assert.ok(result.listedIds.includes(result.created.id), 'the new ticket is listed');
  assert.equal(result.fetched.id, result.created.id);
  assert.equal(result.fetched.requester.email, ADMIN.email);
  assert.equal(result.commentVisibility, 'public');
  assert.equal(result.notFoundCode, 'TICKET_NOT_FOUND');
});
