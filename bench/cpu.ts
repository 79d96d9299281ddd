import { mkdir, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { type CpuProfile, formatTop, type TopFrame, topFrames } from './cpuprofile-top.js';
import {
  CREATED_TITLE_PREFIX,
  createdTicketBodies,
  describeUsers,
  drainJobs,
  ensureDataset,
  openBenchServer,
  removeCreatedTicketsAndFloorJobs,
  sampleTickets,
} from './database.js';
import { benchServerEnv, run, runBench, type Server, startFloor, startServer } from './proc.js';
import { writeJson } from './report.js';

const log = (msg: string) => console.log(`[bench:cpu ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const SEED_PASSWORD = process.env.BENCH_SEED_PASSWORD ?? 'bench-password-123';
const API = '/api/v1';

interface Options {
  tickets: number;
  db: string | null;
  pg: string;
  port: number;
  duration: number;
  warmup: number;
  connections: number;
  rate: number;
  only: string[];
  profile: string | null;
  skipBuild: boolean;
  dist: string;
}

const USAGE = `npm run bench:cpu -- [options]
  --tickets N       dataset size (default 100000; database helpdesk_bench_<N>, seeded once)
  --db URL          use this already seeded database instead
  --pg URL          PostgreSQL server for the bench database (default postgres://postgres@127.0.0.1:5432/postgres)
  --port P          floor on P, API on P + 1 (default 4300)
  --duration S      measured seconds per scenario and mode (default 10)
  --warmup S        unmeasured seconds before each scenario (default 3)
  --connections C   concurrent connections at saturation (default 50)
  --rate R          requests per second of the fixed-rate mode (default 150; 0 skips it)
  --only a,b        only scenarios whose name contains one of these
  --profile DIR     run the API under node --cpu-prof (profile in DIR) and print each scenario's top 10 frames
                    (saturation only: the profiler's own sampling would swamp a low fixed rate)
  --skip-build      use the existing dist/
  --dist DIR        run the build in DIR (inside the repository, e.g. a copy of an earlier dist/) for A/B runs`;

function parse(argv: string[]): Options {
  const o: Options = {
    tickets: 100_000,
    db: null,
    pg: process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    port: 4300,
    duration: 10,
    warmup: 3,
    connections: 50,
    rate: 150,
    only: [],
    profile: null,
    skipBuild: false,
    dist: 'dist',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    const n = (x: string, min = 0) => {
      const k = Number(x);
      if (!Number.isFinite(k) || k < min) throw new Error(`${a}: bad number ${x}`);
      return k;
    };
    if (a === '--tickets') o.tickets = n(v(), 1);
    else if (a === '--db') o.db = v();
    else if (a === '--pg') o.pg = v();
    else if (a === '--port') o.port = n(v(), 1);
    else if (a === '--duration') o.duration = Math.min(n(v(), 1), 120);
    else if (a === '--warmup') o.warmup = Math.min(n(v()), 60);
    else if (a === '--connections') o.connections = Math.min(n(v(), 1), 500);
    else if (a === '--rate') o.rate = Math.min(n(v()), 5000);
    else if (a === '--only') o.only = v().split(',').filter(Boolean);
    else if (a === '--profile') o.profile = path.resolve(v());
    else if (a === '--skip-build') o.skipBuild = true;
    else if (a === '--dist') o.dist = v();
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  return o;
}

interface Shape {
  method: 'GET' | 'POST';
  path: () => string;
  headers?: Record<string, string>;
  body?: () => string;
  expect: number;
}

interface Scenario {
  name: string;
  api: Shape;
  floor: Shape | null;
  /** The requests leave jobs behind (mail, webhooks): wait for the queue to drain and count that CPU too. */
  drainJobs?: boolean;
}

interface Measured {
  requests: number;
  ok: number;
  reqPerSec: number;
  cpuMsPerReq: number;
  p50: number;
  p99: number;
  profileWindow?: { from: number; to: number };
}

function rotate<T>(items: T[]): () => T {
  let i = 0;
  return () => items[i++ % items.length]!;
}

async function fire(
  baseUrl: string,
  s: Shape,
  opts: { connections: number; durationS: number; rate?: number },
): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: baseUrl,
        connections: opts.connections,
        duration: opts.durationS,
        ...(opts.rate ? { overallRate: opts.rate } : {}),
        pipelining: 1,
        timeout: 10,
        headers: { 'content-type': 'application/json', ...s.headers },
        method: s.method,
        requests: [
          { setupRequest: (req) => ({ ...req, method: s.method, path: s.path(), body: s.body?.() }) },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
}

const usNow = () => Number(process.hrtime.bigint() / 1000n);

async function measure(
  server: Server,
  s: Shape,
  opts: { connections: number; durationS: number; warmupS: number; rate?: number; drainUrl?: string },
): Promise<Measured> {
  if (opts.warmupS > 0) await fire(server.baseUrl, s, { ...opts, durationS: opts.warmupS });
  if (opts.drainUrl) await drainJobs(opts.drainUrl);
  const cpu0 = await server.cpuMs();
  const from = usNow();
  const r = await fire(server.baseUrl, s, opts);
  if (opts.drainUrl) await drainJobs(opts.drainUrl);
  const to = usNow();
  const cpu1 = await server.cpuMs();
  const ok = r['2xx'];
  const requests = r.requests.total;
  return {
    requests,
    ok,
    reqPerSec: Math.round((ok / r.duration) * 10) / 10,
    cpuMsPerReq: Math.round(((cpu1 - cpu0) / Math.max(requests, 1)) * 1000) / 1000,
    p50: r.latency.p50,
    p99: r.latency.p99,
    profileWindow: { from, to },
  };
}

async function login(baseUrl: string, email: string): Promise<{ token: string; id: string }> {
  const res = await fetch(`${baseUrl}${API}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: SEED_PASSWORD }),
  });
  const body = (await res.json()) as { accessToken?: string; user?: { id: string } };
  if (res.status !== 200 || !body.accessToken) throw new Error(`login as ${email} answered ${res.status}`);
  const me = await fetch(`${baseUrl}${API}/auth/me`, {
    headers: { authorization: `Bearer ${body.accessToken}` },
  });
  const user = (await me.json()) as { id: string };
  return { token: body.accessToken, id: user.id };
}

function table(headers: string[], rows: string[][]): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join(' | ')} |`;
  return [
    line(headers),
    `|${w.map((x, i) => (i ? `${'-'.repeat(x + 1)}:` : '-'.repeat(x + 2))).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

async function main() {
  const opts = parse(process.argv.slice(2));
  if (!opts.skipBuild) {
    log('npm run build');
    await run('npm', ['run', '--silent', 'build']);
  }
  let url = opts.db;
  const benchServer = url ? null : await openBenchServer(opts.pg);
  if (!url) url = await ensureDataset(benchServer!, opts.tickets, { reseed: false, log });
  await removeCreatedTicketsAndFloorJobs(url);
  const sample = await sampleTickets(url);
  const users = await describeUsers(url);
  const agentEmail = users.agents[0]?.email;
  const requesterEmail = users.requesters[0]?.email;
  if (!agentEmail || !requesterEmail) throw new Error('the database has no seeded agent or requester');
  await mkdir(path.resolve('bench/results'), { recursive: true });
  if (opts.profile) await mkdir(opts.profile, { recursive: true });

  const loadBefore = os.loadavg();
  const floor = await startFloor({
    dist: opts.dist,
    port: opts.port,
    db: url,
    logFile: path.resolve('bench/results/cpu-floor.log'),
  });
  const apiPort = opts.port + 1;
  const api = await startServer({
    name: 'API server',
    script: path.resolve(opts.dist, 'src/server.js'),
    nodeArgs: opts.profile ? ['--cpu-prof', '--cpu-prof-dir', opts.profile] : [],
    env: benchServerEnv({ name: 'cpu', port: apiPort, databaseUrl: url }),
    port: apiPort,
    readyPath: '/readyz',
    logFile: path.resolve('bench/results/cpu-server.log'),
  });

  const results: Array<{ name: string; api: Record<string, Measured>; floor: Record<string, Measured> }> = [];
  const profileStartedUs = usNow();
  try {
    const dbUrl = url;
    const agent = await login(api.baseUrl, agentEmail);
    const requester = await login(api.baseUrl, requesterEmail);
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    const fixed = (p: string) => () => p;
    const apiId = rotate(sample.ticketIds);
    const floorId = rotate(sample.ticketIds);
    let created = 0;
    const createBody = createdTicketBodies();
    const scenarios: Scenario[] = [
      {
        name: 'list as agent (-updatedAt)',
        api: { method: 'GET', path: fixed(`${API}/tickets`), headers: bearer(agent.token), expect: 200 },
        floor: { method: 'GET', path: fixed('/tickets'), expect: 200 },
      },
      {
        name: 'list as agent ?status=open&limit=25',
        api: {
          method: 'GET',
          path: fixed(`${API}/tickets?status=open&limit=25`),
          headers: bearer(agent.token),
          expect: 200,
        },
        floor: { method: 'GET', path: fixed('/tickets?status=open'), expect: 200 },
      },
      {
        name: 'list as requester',
        api: { method: 'GET', path: fixed(`${API}/tickets`), headers: bearer(requester.token), expect: 200 },
        floor: { method: 'GET', path: fixed(`/tickets?requesterId=${requester.id}`), expect: 200 },
      },
      {
        name: 'get by id',
        api: {
          method: 'GET',
          path: () => `${API}/tickets/${apiId()}`,
          headers: bearer(agent.token),
          expect: 200,
        },
        floor: { method: 'GET', path: () => `/tickets/${floorId()}`, expect: 200 },
      },
      { name: '/healthz', api: { method: 'GET', path: fixed('/healthz'), expect: 200 }, floor: null },
      {
        name: 'create ticket (requester), jobs drained',
        drainJobs: true,
        api: {
          method: 'POST',
          path: fixed(`${API}/tickets`),
          headers: bearer(requester.token),
          body: createBody,
          expect: 201,
        },
        floor: {
          method: 'POST',
          path: fixed('/tickets'),
          body: () =>
            JSON.stringify({
              title: `${CREATED_TITLE_PREFIX} floor ${++created}: cannot open the shared calendar`,
              description: 'Since this morning the shared calendar shows an error when I open it. Steps: …',
              requesterId: requester.id,
              actorName: 'Requester',
            }),
          expect: 201,
        },
      },
    ].filter((s) => opts.only.length === 0 || opts.only.some((w) => s.name.includes(w))) as Scenario[];

    const modes: Array<[string, { connections: number; rate?: number }]> = [
      ['saturation', { connections: opts.connections }],
    ];
    // The profiler samples a thousand times a second whatever the load: at a low fixed rate that alone
    // would dominate the CPU per request, so a profiled run measures saturation only.
    if (opts.rate > 0 && !opts.profile)
      modes.push([`${opts.rate} req/s`, { connections: 10, rate: opts.rate }]);

    for (const s of scenarios) {
      const row = {
        name: s.name,
        api: {} as Record<string, Measured>,
        floor: {} as Record<string, Measured>,
      };
      for (const [mode, m] of modes) {
        const common = { durationS: opts.duration, warmupS: opts.warmup, ...m };
        if (s.floor) {
          row.floor[mode] = await measure(floor, s.floor, common);
        }
        row.api[mode] = await measure(api, s.api, { ...common, drainUrl: s.drainJobs ? dbUrl : undefined });
        const f = row.floor[mode];
        const a = row.api[mode]!;
        const bad = a.requests - a.ok;
        log(
          `${s.name} @ ${mode}: API ${a.cpuMsPerReq} CPU ms/req (${a.reqPerSec} req/s, p99 ${a.p99} ms${bad ? `, ${bad} not 2xx` : ''})` +
            (f ? `; floor ${f.cpuMsPerReq} (${f.reqPerSec} req/s)` : ''),
        );
      }
      results.push(row);
    }
  } finally {
    await floor.stop();
    await api.stop();
    await removeCreatedTicketsAndFloorJobs(url).catch((err) =>
      log(`could not remove the bench's tickets: ${(err as Error).message}`),
    );
    await benchServer?.stop();
  }
  const loadAfter = os.loadavg();

  const modeNames = Object.keys(results[0]?.api ?? {});
  const headers = ['scenario'];
  for (const m of modeNames) headers.push(`API @${m}`, `floor @${m}`, '× floor', `req/s @${m}`);
  const rows = results.map((r) => {
    const cells = [r.name];
    for (const m of modeNames) {
      const a = r.api[m]!;
      const f = r.floor[m];
      cells.push(
        a.cpuMsPerReq.toFixed(3),
        f ? f.cpuMsPerReq.toFixed(3) : '–',
        f ? (a.cpuMsPerReq / f.cpuMsPerReq).toFixed(2) : '–',
        `${Math.round(a.reqPerSec)}${f ? ` / ${Math.round(f.reqPerSec)}` : ''}`,
      );
    }
    return cells;
  });
  const fmt = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  console.log(`\nServer CPU ms per request (user + system of the server process / answers), API vs floor`);
  console.log(
    `${os.cpus().length} × ${os.cpus()[0]?.model}; Node ${process.version}; ${opts.duration}s measured after ${opts.warmup}s warm-up; saturation = ${opts.connections} connections; load average before ${fmt(loadBefore)}, after ${fmt(loadAfter)}\n`,
  );
  console.log(table(headers, rows));

  const tops: Record<string, TopFrame[]> = {};
  if (opts.profile) {
    const files = (await readdir(opts.profile)).filter((f) => f.endsWith('.cpuprofile'));
    const newest = files.sort().at(-1);
    if (!newest) console.log('\nno .cpuprofile was written');
    else {
      const profile = JSON.parse(await readFile(path.join(opts.profile, newest), 'utf8')) as CpuProfile;
      if (profile.startTime > usNow() || profile.endTime < profileStartedUs)
        console.log('\n(profile clock does not match: windows ignored)');
      for (const r of results) {
        for (const [mode, m] of Object.entries(r.api)) {
          const top = topFrames(profile, { top: 10, from: m.profileWindow?.from, to: m.profileWindow?.to });
          tops[`${r.name} @ ${mode}`] = top.frames;
          console.log(`\nTop 10 self time, ${r.name} @ ${mode} (${path.join(opts.profile, newest)}):`);
          console.log(formatTop(top));
        }
      }
    }
  }
  const file = await writeJson('cpu', {
    kind: 'cpu',
    options: opts,
    loadBefore,
    loadAfter,
    results,
    tops,
  });
  console.log(`\nresults: ${file}`);
}

runBench('bench:cpu', main);
