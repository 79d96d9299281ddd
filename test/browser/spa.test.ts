/// <reference lib="dom" />
/**
 * Browser test (npm run test:browser): a real Chromium drives the example SPA, served from its own origin,
 * against a live API server (node src/server.ts on a fresh database) — login, create ticket, list with
 * filters and paging, ticket view with comments and status buttons, live updates from the change stream —
 * then opens /docs.
 * Screenshots go to artifacts/screenshots/.
 *
 * Needs Debian's chromium (apt-get install chromium) or CHROMIUM_PATH; never downloads a browser.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
// @ts-expect-error plain JS module without types (the SPA's own static server)
import { createSpaServer } from '../../examples/spa/serve.mjs';
import {
  ARTIFACTS,
  freePort,
  type LiveServer,
  startApiServer,
  type TempDatabase,
  tempDatabase,
} from '../../scripts/lib/harness.js';
import { TestSmtpServer } from '../helpers/smtp.js';

const SHOTS = path.join(ARTIFACTS, 'screenshots');
const ADMIN = { email: 'admin@example.test', password: 'Admin-Browser-Pass-2026' };
const PASSWORD = 'Browser-Flow-Pass-2026';
const run = randomBytes(3).toString('hex');
const AGENT = { email: `agent-${run}@example.test`, name: 'Ada Agent', role: 'agent', password: PASSWORD };
const REQUESTER = {
  email: `req-${run}@example.test`,
  name: 'Rita Requester',
  role: 'requester',
  password: PASSWORD,
};

let db: TempDatabase;
let api: LiveServer;
let spa: Server;
let stranger: Server;
let spaOrigin: string;
let strangerOrigin: string;
let browser: Browser;
let smtp: TestSmtpServer;

async function listen(server: Server, port: number) {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
}

async function call(method: string, url: string, token?: string, body?: unknown) {
  const res = await fetch(`${api.baseUrl}/api/v1${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${url} → ${res.status} ${text}`);
  return data;
}
const login = async (email: string, password: string): Promise<string> =>
  (await call('POST', '/auth/login', undefined, { email, password })).accessToken;

before(async () => {
  db = await tempDatabase();
  const spaPort = await freePort();
  spaOrigin = `http://127.0.0.1:${spaPort}`;
  smtp = await TestSmtpServer.start();
  api = await startApiServer({
    name: 'browser',
    databaseUrl: db.url,
    env: {
      CORS_ORIGINS: spaOrigin,
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      SMTP_URL: smtp.url,
      MAIL_FROM: 'Helpdesk <support@helpdesk.test>',
      PUBLIC_APP_URL: spaOrigin,
    },
  });
  spa = createSpaServer({ apiBase: api.baseUrl });
  await listen(spa, spaPort);
  // The same SPA on an origin the API does not allow: the browser must refuse it the responses.
  const strangerPort = await freePort();
  strangerOrigin = `http://127.0.0.1:${strangerPort}`;
  stranger = createSpaServer({ apiBase: api.baseUrl });
  await listen(stranger, strangerPort);

  const admin = await login(ADMIN.email, ADMIN.password);
  await call('POST', '/users', admin, AGENT);
  await call('POST', '/users', admin, REQUESTER);

  await mkdir(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    // Without the background-networking flags Chromium tries to reach Google and the closed network refuses it.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  await new Promise((r) => (spa ? spa.close(r) : r(null)));
  await new Promise((r) => (stranger ? stranger.close(r) : r(null)));
  await api?.stop();
  await smtp?.close();
  await db?.drop();
});

async function newPage(): Promise<{ context: BrowserContext; page: Page; apiCalls: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const apiCalls: string[] = [];
  page.on('response', (res) => {
    if (res.url().startsWith(api.baseUrl)) {
      apiCalls.push(`${res.request().method()} ${new URL(res.url()).pathname} ${res.status()}`);
      const allowed = res.headers()['access-control-allow-origin'];
      if (res.request().method() !== 'OPTIONS' && allowed !== undefined) assert.equal(allowed, spaOrigin);
    }
  });
  return { context, page, apiCalls };
}

async function spaLogin(page: Page, origin: string, who: { email: string; password: string }) {
  await page.goto(`${origin}/`);
  await page.fill('[data-testid=login-form] input[name=email]', who.email);
  await page.fill('[data-testid=login-form] input[name=password]', who.password);
  await page.click('[data-testid=login-submit]');
}

/** On a timeout, keep a screenshot and put the SPA's error banner into the failure message. */
const failWith = (page: Page, name: string) => async (err: Error) => {
  await page.screenshot({ path: path.join(SHOTS, `failure-${name}.png`), fullPage: true }).catch(() => {});
  const banner = await page.textContent('[data-testid=flash]').catch(() => '');
  throw new Error(`${name}: ${err.message}\nSPA banner: ${banner}\nURL: ${page.url()}`);
};

const statusButtons = (page: Page) =>
  page.$$eval('[data-testid=transitions] button[data-testid^=status-]', (els) =>
    els.map((e) => (e as HTMLElement).dataset.testid!.replace('status-', '')).sort(),
  );

let ticketId = 0;
const tag = `pager${run}`;

test('a requester signs in on the SPA origin, creates a ticket and replies, all across origins', async () => {
  const { context, page, apiCalls } = await newPage();
  await spaLogin(page, spaOrigin, REQUESTER);
  await page.waitForSelector('[data-testid=ticket-table], [data-testid=no-tickets]');
  assert.match((await page.textContent('[data-testid=whoami]')) ?? '', /Rita Requester · requester/);

  await page.click('[data-testid=nav-new]');
  await page.fill('[data-testid=new-ticket-form] input[name=title]', `VPN drops every hour ${run}`);
  await page.fill(
    '[data-testid=new-ticket-form] textarea[name=description]',
    'Since Monday the VPN disconnects.',
  );
  await page.selectOption('[data-testid=new-ticket-form] select[name=priority]', 'high');
  assert.equal(await page.$('[data-testid=new-ticket-form] input[name=tags]'), null, 'tags are for agents');
  await page.click('[data-testid=create-ticket]');
  await page.waitForSelector('[data-testid=ticket-heading]').catch(failWith(page, 'create-ticket'));
  ticketId = Number(/#\/tickets\/(\d+)$/.exec(page.url())![1]);
  await page.waitForSelector('[data-testid=ticket-heading]');
  assert.equal(
    await page.textContent('[data-testid=ticket-heading]'),
    `#${ticketId} VPN drops every hour ${run}`,
  );
  assert.equal(await page.textContent('[data-testid=ticket-view] [data-testid=ticket-status]'), 'new');

  // The buttons are exactly the ticket's allowedTransitions for this caller.
  const token = await login(REQUESTER.email, REQUESTER.password);
  const ticket = await call('GET', `/tickets/${ticketId}`, token);
  assert.deepEqual(await statusButtons(page), [...ticket.allowedTransitions].sort());
  assert.ok(ticket.allowedTransitions.includes('cancelled'), 'a requester may cancel a new ticket');

  await page.fill('[data-testid=comment-form] textarea[name=body]', 'It happens on Wi-Fi and cable.');
  await page.click('[data-testid=comment-submit]');
  await page.waitForSelector('[data-testid=comment]');
  assert.match((await page.textContent('[data-testid=comments]')) ?? '', /It happens on Wi-Fi and cable\./);
  assert.equal(await page.$('[data-testid=comment-form] select[name=visibility]'), null, 'no internal notes');

  assert.ok(apiCalls.includes('POST /api/v1/auth/login 200'), apiCalls.join('\n'));
  assert.ok(apiCalls.includes('POST /api/v1/tickets 201'), apiCalls.join('\n'));
  assert.ok(apiCalls.includes(`POST /api/v1/tickets/${ticketId}/comments 201`), apiCalls.join('\n'));

  // An access token the API refuses is renewed once with the refresh token, and the page still loads.
  await page.evaluate(() => {
    const s = JSON.parse(sessionStorage.getItem('helpdesk.session') ?? '{}');
    sessionStorage.setItem('helpdesk.session', JSON.stringify({ ...s, accessToken: 'expired.or.revoked' }));
  });
  await page.goto(`${spaOrigin}/#/tickets?status=new`);
  await page.waitForSelector(`[data-testid=ticket-row-${ticketId}]`).catch(failWith(page, 'refresh'));
  assert.ok(apiCalls.includes('POST /api/v1/auth/refresh 200'), apiCalls.join('\n'));
  await context.close();
});

test('an agent filters and pages the list, takes the ticket and moves it with the status buttons', async () => {
  // Twelve more tickets with one search word: more than one page of 10.
  const requester = await login(REQUESTER.email, REQUESTER.password);
  for (let i = 1; i <= 12; i++) {
    await call('POST', '/tickets', requester, {
      title: `Printer ${tag} number ${i}`,
      description: `Paging fixture ${i} (${tag})`,
      priority: 'low',
    });
  }

  const { context, page } = await newPage();
  await spaLogin(page, spaOrigin, AGENT);
  await page.waitForSelector('[data-testid=filters]');
  await page.fill('[data-testid=filters] input[name=q]', tag);
  await page.selectOption('[data-testid=filters] select[name=priority]', 'low');
  await page.click('[data-testid=apply-filters]');
  // The unfiltered first page also has 10 rows: wait for the filtered one (every title carries the tag).
  // The titles are taken in the same look as the check: a live refresh (the fixture's own ticket.created
  // events can reach the agent's new stream) re-renders the list, and a second look could fall in between.
  const shownTitles = (rows: number, word: string) =>
    page
      .waitForFunction(
        ([n, w]) => {
          const titles = Array.from(document.querySelectorAll('[data-testid=ticket-title]')).map(
            (e) => e.textContent ?? '',
          );
          return titles.length === n && titles.every((t) => t.includes(w)) && titles;
        },
        [rows, word] as const,
      )
      .then((handle) => handle.jsonValue() as Promise<string[]>);
  const titles = await shownTitles(10, tag);
  assert.equal(titles.length, 10);
  assert.ok(
    titles.every((t) => t.includes(tag)),
    `filtered rows: ${titles.join(', ')}`,
  );
  assert.equal(await page.textContent('[data-testid=page-number]'), 'Page 1');
  assert.equal(await page.isDisabled('[data-testid=prev-page]'), true);
  await page.screenshot({ path: path.join(SHOTS, 'spa-ticket-list.png'), fullPage: true });

  await page.click('[data-testid=next-page]');
  await page.waitForFunction(
    () => document.querySelector('[data-testid=page-number]')?.textContent === 'Page 2',
  );
  const page2 = await shownTitles(2, tag);
  assert.equal(new Set([...titles, ...page2]).size, 12, 'the two pages hold the 12 tickets once each');
  assert.equal(await page.isDisabled('[data-testid=next-page]'), true);
  await page.click('[data-testid=prev-page]');
  await page.waitForFunction(
    () => document.querySelector('[data-testid=page-number]')?.textContent === 'Page 1',
  );
  await page.waitForFunction(() => document.querySelectorAll('[data-testid^=ticket-row-]').length === 10);

  // Status filter: the requester's VPN ticket is the only "new" one with priority high from this run.
  await page.goto(`${spaOrigin}/#/tickets?status=new&priority=high`);
  await page.waitForSelector(`[data-testid=ticket-row-${ticketId}]`);

  await page.click(`[data-testid=ticket-row-${ticketId}] a[href="#/tickets/${ticketId}"] >> nth=0`);
  await page.waitForSelector('[data-testid=ticket-heading]');
  const agent = await login(AGENT.email, AGENT.password);
  let ticket = await call('GET', `/tickets/${ticketId}`, agent);
  assert.deepEqual(await statusButtons(page), [...ticket.allowedTransitions].sort());

  await page.click('[data-testid=take-ticket]');
  await page.waitForFunction(
    () => document.querySelector('[data-testid=ticket-assignee]')?.textContent === 'Assignee Ada Agent',
  );
  assert.equal(await page.textContent('[data-testid=ticket-view] [data-testid=ticket-status]'), 'open');
  ticket = await call('GET', `/tickets/${ticketId}`, agent);
  assert.deepEqual(await statusButtons(page), [...ticket.allowedTransitions].sort());

  await page.click('[data-testid=status-pending]');
  await page.waitForFunction(
    () =>
      document.querySelector('[data-testid=ticket-view] [data-testid=ticket-status]')?.textContent ===
      'pending',
  );
  await page.fill('[data-testid=comment-form] textarea[name=body]', 'Checked the concentrator logs.');
  await page.selectOption('[data-testid=comment-form] select[name=visibility]', 'internal');
  await page.click('[data-testid=comment-submit]');
  await page.waitForSelector('[data-testid=comment].internal');

  await page.click('[data-testid=status-solved]');
  await page.waitForFunction(
    () =>
      document.querySelector('[data-testid=ticket-view] [data-testid=ticket-status]')?.textContent ===
      'solved',
  );
  ticket = await call('GET', `/tickets/${ticketId}`, agent);
  assert.equal(ticket.status, 'solved');
  assert.deepEqual(await statusButtons(page), [...ticket.allowedTransitions].sort());
  await page.screenshot({ path: path.join(SHOTS, 'spa-ticket-view.png'), fullPage: true });
  await context.close();

  // The requester never sees the internal note.
  const comments = await call('GET', `/tickets/${ticketId}/comments`, requester);
  assert.ok(comments.data.every((c: { visibility: string }) => c.visibility === 'public'));
});

test('changes made elsewhere show up live: the list and the open ticket refresh by themselves', async () => {
  const { context, page, apiCalls } = await newPage();
  await spaLogin(page, spaOrigin, AGENT);
  await page.waitForSelector('[data-testid=ticket-table], [data-testid=no-tickets]');
  await page.waitForFunction(() => document.body.dataset.live === 'on').catch(failWith(page, 'live-on'));

  // A ticket opened by someone else appears at the top of the list (newest activity first) without a reload.
  const requester = await login(REQUESTER.email, REQUESTER.password);
  const title = `Live ${run} ${randomBytes(2).toString('hex')}`;
  const created = await call('POST', '/tickets', requester, { title, description: 'Seen live?' });
  await page
    .waitForFunction(
      (t) =>
        Array.from(document.querySelectorAll('[data-testid=ticket-title]')).some((e) => e.textContent === t),
      title,
    )
    .catch(failWith(page, 'live-list'));

  // The open ticket follows a status change and a reply made by another agent.
  await page.click(`[data-testid=ticket-row-${created.id}] a[href="#/tickets/${created.id}"] >> nth=0`);
  await page.waitForSelector('[data-testid=ticket-heading]');
  assert.equal(await page.textContent('[data-testid=ticket-view] [data-testid=ticket-status]'), 'new');
  const admin = await login(ADMIN.email, ADMIN.password);
  const other = await call('POST', '/users', admin, {
    email: `agent2-${run}@example.test`,
    name: 'Otto Other',
    role: 'agent',
    password: PASSWORD,
  });
  await call('PATCH', `/tickets/${created.id}`, admin, { assigneeId: other.id });
  await page
    .waitForFunction(
      () =>
        document.querySelector('[data-testid=ticket-view] [data-testid=ticket-status]')?.textContent ===
        'open',
    )
    .catch(failWith(page, 'live-ticket'));
  await call('POST', `/tickets/${created.id}/comments`, admin, { body: 'Answered from another desk.' });
  await page
    .waitForFunction(() =>
      document.querySelector('[data-testid=comments]')?.textContent?.includes('another desk'),
    )
    .catch(failWith(page, 'live-comment'));
  // One stream, opened with a single-use token (EventSource cannot send the bearer header).
  assert.ok(apiCalls.includes('POST /api/v1/changes/stream-tokens 201'), apiCalls.join('\n'));
  await page.screenshot({ path: path.join(SHOTS, 'spa-live-update.png'), fullPage: true });
  await context.close();
});

test('the SPA on an origin CORS does not allow cannot read the API', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await spaLogin(page, strangerOrigin, REQUESTER);
  await page.waitForFunction(() => !document.getElementById('flash')?.hidden);
  assert.match((await page.textContent('[data-testid=flash]')) ?? '', /fetch/i);
  assert.equal(await page.$('[data-testid=ticket-table]'), null);
  await context.close();
});

test('/docs renders every operation of the OpenAPI document', async () => {
  const doc = await (await fetch(`${api.baseUrl}/openapi.json`)).json();
  const operations: Array<{ method: string; path: string }> = [];
  for (const [p, item] of Object.entries<Record<string, unknown>>(doc.paths))
    for (const method of Object.keys(item))
      if (['get', 'post', 'put', 'patch', 'delete'].includes(method)) operations.push({ method, path: p });
  assert.ok(operations.length > 10, `only ${operations.length} operations documented`);

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  await page.goto(`${api.baseUrl}/docs`);
  await page.waitForSelector('.opblock');
  await page.waitForFunction((n) => document.querySelectorAll('.opblock').length >= n, operations.length);
  const shown = await page.$$eval('.opblock', (els) =>
    els.map((e) => {
      const method = e.querySelector('.opblock-summary-method')?.textContent?.toLowerCase() ?? '';
      const p = e.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? '';
      return `${method} ${p}`;
    }),
  );
  for (const op of operations)
    assert.ok(shown.includes(`${op.method} ${op.path}`), `${op.method} ${op.path} missing`);
  assert.match((await page.textContent('.info .title')) ?? '', /Helpdesk API/);
  await page.screenshot({ path: path.join(SHOTS, 'docs.png'), fullPage: true });
  await context.close();
});

test('"Forgot password?" mails a link; the reset page sets the new password; old sessions end', async () => {
  const who = {
    email: `forgetful-${run}@example.test`,
    name: 'Fay Forgetful',
    role: 'requester',
    password: PASSWORD,
  };
  const admin = await login(ADMIN.email, ADMIN.password);
  await call('POST', '/users', admin, who);
  const oldSession = await call('POST', '/auth/login', undefined, {
    email: who.email,
    password: who.password,
  });

  const { context, page } = await newPage();
  await page.goto(`${spaOrigin}/`);
  await page.click('[data-testid=forgot-link]');
  await page.fill('[data-testid=forgot-form] input[name=email]', who.email);
  await page.click('[data-testid=forgot-submit]');
  await page.waitForSelector('[data-testid=flash].ok').catch(failWith(page, 'forgot-submit'));
  assert.match((await page.textContent('[data-testid=flash]')) ?? '', /reset link is on its way/);

  const mail = await smtp.waitFor(
    (m) => m.envelope.to.includes(who.email) && m.parsed.subject === 'Reset your password',
  );
  const link = /(http:\/\/127\.0\.0\.1:\d+\/reset-password\?token=[A-Za-z0-9_-]+)/.exec(
    mail.parsed.text ?? '',
  );
  assert.ok(link, mail.parsed.text);
  assert.ok(link[1]!.startsWith(`${spaOrigin}/reset-password?token=`));

  await page.goto(link[1]!);
  await page.waitForSelector('[data-testid=reset-form]').catch(failWith(page, 'reset-page'));
  assert.ok(!page.url().includes('token='), 'the token leaves the address bar');
  const fresh = 'A-Fresh-Reset-Pass-2026';
  await page.fill('[data-testid=reset-form] input[name=password]', fresh);
  await page.fill('[data-testid=reset-form] input[name=again]', fresh);
  await page.click('[data-testid=reset-submit]');
  await page.waitForSelector('[data-testid=login-form]').catch(failWith(page, 'reset-submit'));
  assert.match((await page.textContent('[data-testid=flash]')) ?? '', /password was changed/);
  await page.screenshot({ path: path.join(SHOTS, 'spa-password-reset.png') });

  await spaLogin(page, spaOrigin, { email: who.email, password: fresh });
  await page
    .waitForSelector('[data-testid=whoami]:has-text("Fay Forgetful")')
    .catch(failWith(page, 'login-after-reset'));
  // The session from before the reset is over.
  const refreshed = await fetch(`${api.baseUrl}/api/v1/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refreshToken: oldSession.refreshToken }),
  });
  assert.equal(refreshed.status, 401);
  await context.close();
});
