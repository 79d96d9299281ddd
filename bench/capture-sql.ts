/**
 * `npx tsx bench/capture-sql.ts <DATABASE_URL>`: the SQL statements (text only, never parameters) the API
 * sends for the benchmark's hot requests (list as agent, ?status=open, list as requester, get by id,
 * create ticket), so the floor (bench/floor.ts) can run the very same statements.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { type AppConfig, buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { describeUsers, sampleTickets } from './database.js';

const url = process.argv[2];
if (!url) throw new Error('usage: npx tsx bench/capture-sql.ts postgres://…');
const texts: string[] = [];
const original = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const c = args[0] as { text?: string } | string;
  texts.push(typeof c === 'string' ? c : (c?.text ?? '?'));
  return (original as (...a: unknown[]) => unknown).apply(this, args);
} as typeof original;

const config = loadConfig({
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'silent',
  JWT_SECRET: randomBytes(48).toString('base64url'),
  DATABASE_URL: url,
  DATA_DIR: '/tmp/cpu/capture-data',
  RATE_LIMIT_MAX: '1000000000',
  OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
  LOGIN_RATE_LIMIT_PER_IP: '1000000000',
  LOGIN_RATE_LIMIT_PER_ACCOUNT: '1000000000',
}) as AppConfig;
const app = await buildApp(config, { logger: false });
const users = await describeUsers(url);
const sample = await sampleTickets(url);
async function login(email: string) {
  const r = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { email, password: 'bench-password-123' },
  });
  return (r.json() as { accessToken: string }).accessToken;
}
const agent = await login(users.agents[0]!.email);
const requester = await login(users.requesters[0]!.email);
const cases: Array<[string, string, string, string, unknown?]> = [
  ['list as agent', 'GET', '/api/v1/tickets', agent],
  ['list status=open', 'GET', '/api/v1/tickets?status=open', agent],
  ['list as requester', 'GET', '/api/v1/tickets', requester],
  ['get by id', 'GET', `/api/v1/tickets/${sample.ticketIds[0]}`, agent],
  [
    'create ticket',
    'POST',
    '/api/v1/tickets',
    requester,
    { title: 'bench-created capture', description: 'capture', priority: 'normal' },
  ],
];
for (const [name, method, path, token, payload] of cases) {
  // twice: the second shows the steady state (actor and session cached)
  for (let i = 0; i < 2; i++) {
    texts.length = 0;
    const r = await app.inject({
      method: method as 'GET',
      url: path,
      headers: { authorization: `Bearer ${token}` },
      ...(payload ? { payload: payload as object } : {}),
    });
    if (i === 1) {
      console.log(`\n### ${name}: ${r.statusCode}, ${texts.length} statements`);
      for (const t of texts) console.log(`${t.replace(/\s+/g, ' ').trim()};`);
    }
  }
}
await app.close();
