import os from 'node:os';
import path from 'node:path';
import { type BenchOptions, parseArgs } from './args.js';
import {
  type BenchServer,
  describeUsers,
  drainJobs,
  ensureDataset,
  openBenchServer,
  pendingJobs,
  sampleTickets,
} from './database.js';
import { type LoadResult, measure, type Scenario } from './load.js';
import { type PacedResult, pacedInFreshProcess, pacedTable } from './paced.js';
import { benchServerEnv, freePort, run, runBench, type Server, startServer } from './proc.js';
import {
  endpointTable,
  machine,
  mb,
  type Row,
  type SuiteResult,
  scaleTable,
  TARGETS,
  writeJson,
} from './report.js';
import {
  allScenarios,
  type Credentials,
  floorHelloScenario,
  floorScenario,
  readScenarios,
  SEARCH_TERMS,
} from './scenarios.js';

const log = (msg: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** The password bench/seed.ts gives every seeded user (overridable for a differently seeded database). */
const SEED_PASSWORD = process.env.BENCH_SEED_PASSWORD ?? 'bench-password-123';

async function login(baseUrl: string, creds: Credentials): Promise<string> {
  const res = await fetch(`${baseUrl}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(creds),
  });
  const body = (await res.json()) as { accessToken?: string };
  if (res.status !== 200 || !body.accessToken) {
    throw new Error(`login as ${creds.email} answered ${res.status}: ${JSON.stringify(body)}`);
  }
  return body.accessToken;
}

function serverEnv(databaseUrl: string, port: number, opts: BenchOptions): NodeJS.ProcessEnv {
  const env = benchServerEnv({ name: 'run', port, databaseUrl });
  if (opts.pool !== undefined) env.DB_POOL_MAX = String(opts.pool);
  if (opts.webConcurrency !== undefined) env.WEB_CONCURRENCY = String(opts.webConcurrency);
  return env;
}

function selected(opts: BenchOptions, s: Scenario): boolean {
  return opts.only.length === 0 || s.kind === 'floor' || opts.only.some((w) => s.name.includes(w));
}

async function measureOn(
  server: Server,
  s: Scenario,
  opts: BenchOptions,
): Promise<LoadResult & { peakRssMb: number; serverCpuMsPerReq: number }> {
  log(`${s.name}: ${opts.warmup}s warm-up + ${opts.duration}s at ${opts.connections} connections`);
  let cpuBefore = 0;
  const r = await measure(server.baseUrl, s, {
    connections: opts.connections,
    durationS: opts.duration,
    warmupS: opts.warmup,
    beforeMeasured: async () => {
      server.resetPeak();
      cpuBefore = await server.cpuMs();
    },
  });
  const cpuMs = (await server.cpuMs()) - cpuBefore;
  const serverCpuMsPerReq = Math.round((cpuMs / Math.max(r.requests, 1)) * 1000) / 1000;
  const bad = Object.values(r.unexpected).reduce((a, b) => a + b, 0) + r.errors;
  const procs = server.processCount();
  // VmHWM after each run says which run raised it: the 100 ms sampler misses peaks shorter than that.
  const hwm = mb(await server.highWaterMark());
  log(
    `  ${r.reqPerSec} req/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, peak RSS ${mb(server.peakRss())} MB per process${procs > 1 ? ` (${procs} processes, ${mb(server.peakRssTotal())} MB together)` : ''}, VmHWM so far ${hwm} MB${bad ? `, ${bad} unexpected answers ${JSON.stringify(r.unexpected)}` : ''}`,
  );
  return { ...r, peakRssMb: mb(server.peakRss()), serverCpuMsPerReq };
}

/** The paced open-loop runs: list and get at each of --rates, evenly spaced, latency from the due time. */
async function pacedRuns(server: Server, scenarios: Scenario[], opts: BenchOptions): Promise<PacedResult[]> {
  const out: PacedResult[] = [];
  const targets = scenarios.filter((s) => s.kind === 'list' || s.kind === 'get').slice(0, 1);
  const get = scenarios.find((s) => s.kind === 'get');
  if (get) targets.push(get);
  for (const s of targets) {
    for (const rate of opts.rates) {
      log(`${s.name}: paced ${rate} req/s, ${opts.warmup}s warm-up + ${opts.pacedDuration}s`);
      server.resetPeak();
      const r = await pacedInFreshProcess(server.baseUrl, s, {
        rate,
        durationS: opts.pacedDuration,
        warmupS: opts.warmup,
      });
      log(
        `  answered ${r.answeredPerSec}/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms (send lag p99 ${r.sendLagP99Ms} ms, ${r.sockets} sockets), VmHWM so far ${mb(await server.highWaterMark())} MB`,
      );
      out.push(r);
    }
  }
  return out;
}

/** One size: dataset, floor, API server, the chosen scenarios. */
async function runSuite(
  bench: BenchServer,
  size: number,
  opts: BenchOptions,
  which: 'all' | 'read',
): Promise<SuiteResult & { paced: PacedResult[]; processes: number; peakRssTotalMb: number }> {
  // BENCH_DB_PREFIX: a database of one's own (e.g. several people benching on one PostgreSQL server).
  const prefix = process.env.BENCH_DB_PREFIX;
  const url = await ensureDataset(bench, size, {
    reseed: opts.reseed,
    log,
    ...(prefix ? { name: `${prefix}_bench_${size}` } : {}),
  });
  const sample = await sampleTickets(url);
  const users = await describeUsers(url);
  const agent = users.agents[0];
  const requester = users.requesters[0];
  if (!agent || !requester)
    throw new Error('the seeded database has no active agent or requester with tickets');
  log(
    `dataset: ${sample.totalTickets.toLocaleString('en')} live tickets; agent ${agent.email}, requester ${requester.email} (${requester.tickets} tickets)`,
  );
  const loadBefore = os.loadavg();
  const poolSize = String(opts.pool ?? 10);

  // 1. The floor, alone on the machine.
  const floorPort = await freePort();
  const floor = await startServer({
    name: 'floor',
    script: path.resolve('dist/bench/floor.js'),
    args: ['--port', String(floorPort), '--db', url, '--pool', poolSize],
    env: { PATH: process.env.PATH, NODE_ENV: 'production' },
    port: floorPort,
    readyPath: '/readyz',
    logFile: path.resolve(`bench/results/floor-${size}.log`),
  });
  let floorRow: LoadResult & { peakRssMb: number; serverCpuMsPerReq: number };
  // The hello floor only when the liveness probe is measured (the scale runs never do).
  const wantsHello =
    which === 'all' && (opts.only.length === 0 || opts.only.some((w) => 'healthz'.includes(w)));
  let helloRow: (LoadResult & { peakRssMb: number; serverCpuMsPerReq: number }) | undefined;
  try {
    floorRow = await measureOn(floor, floorScenario, opts);
    if (wantsHello) helloRow = await measureOn(floor, floorHelloScenario, opts);
  } finally {
    await floor.stop();
  }

  // 2. The API's production build.
  const port = await freePort();
  const api = await startServer({
    name: 'API server',
    script: path.resolve('dist/src/server.js'),
    env: serverEnv(url, port, opts),
    port,
    readyPath: '/readyz',
    logFile: path.resolve(`bench/results/server-${size}.log`),
  });
  const rows: Row[] = [{ ...floorRow, vsFloor: 1 }];
  if (helloRow) rows.push({ ...helloRow, vsFloor: 1 });
  let hwm = 0;
  let pacedResults: PacedResult[] = [];
  let peakRssTotalMb = 0;
  try {
    const creds = { agent: { email: agent.email, password: SEED_PASSWORD } };
    const tokens = {
      agent: await login(api.baseUrl, creds.agent),
      requester: await login(api.baseUrl, { email: requester.email, password: SEED_PASSWORD }),
    };
    const scenarios = which === 'all' ? allScenarios(tokens, sample, creds.agent) : readScenarios(tokens);
    log(`API server started, two users logged in: VmHWM so far ${mb(await api.highWaterMark())} MB`);
    for (const s of scenarios.filter((x) => selected(opts, x))) {
      const r = await measureOn(api, s, opts);
      peakRssTotalMb = Math.max(peakRssTotalMb, mb(api.peakRssTotal()));
      // The liveness probe is held to the bare hello route, everything else to the list floor.
      const base = s.kind === 'health' ? helloRow : floorRow;
      rows.push({ ...r, vsFloor: base && base.reqPerSec > 0 ? r.reqPerSec / base.reqPerSec : null });
    }
    if (which === 'all' && opts.rates.length > 0) {
      // The runs above left jobs behind (create: a mail each). Measured while the server still works
      // them off, the paced latencies would be those of a server busy mailing, not of list and get.
      const t = Date.now();
      const left = await pendingJobs(url);
      await drainJobs(url);
      if (left > 0)
        log(
          `drained ${left} jobs left by the load runs in ${((Date.now() - t) / 1000).toFixed(1)} s, VmHWM so far ${mb(await api.highWaterMark())} MB`,
        );
      pacedResults = await pacedRuns(
        api,
        scenarios.filter((x) => selected(opts, x)),
        opts,
      );
    }
    hwm = await api.highWaterMark();
  } finally {
    await api.stop();
  }
  return {
    tickets: size,
    rows,
    serverVmHwmMb: mb(hwm),
    loadBefore,
    loadAfter: os.loadavg(),
    paced: pacedResults,
    processes: api.processCount(),
    peakRssTotalMb,
  };
}

function header(opts: BenchOptions, bench: BenchServer): string {
  const m = machine();
  return [
    `machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryMb} MB, Node ${m.node}; database: ${bench.label}`,
    `API server: WEB_CONCURRENCY=${opts.webConcurrency ?? `default (production: ${m.cpus})`}; load: ${opts.connections} connections, ${opts.warmup}s warm-up + ${opts.duration}s per scenario, autocannon on loopback`,
    `note: autocannon, the API server and PostgreSQL share the same ${m.cpus} cores; numbers include that contention.`,
  ].join('\n');
}

const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');

async function main() {
  const opts = parseArgs(process.argv.slice(2), process.env);
  const startedAt = new Date().toISOString();
  if (opts.bulk) {
    const { runBulkBench } = await import('./bulk.js');
    const server = await openBenchServer(opts.pg);
    try {
      await runBulkBench(server.adminUrl);
    } finally {
      await server.stop();
    }
    return;
  }
  if (opts.jobs) {
    const { runJobsBench } = await import('./jobs.js');
    const server = await openBenchServer(opts.pg);
    try {
      await runJobsBench(server.adminUrl, opts);
    } finally {
      await server.stop();
    }
    return;
  }
  if (!opts.skipBuild) {
    log('npm run build');
    await run('npm', ['run', '--silent', 'build']);
  }
  const bench = await openBenchServer(opts.pg);
  try {
    if (opts.scale) {
      const suites: SuiteResult[] = [];
      for (const size of opts.sizes) {
        log(`--- scale: ${size.toLocaleString('en')} tickets ---`);
        suites.push(await runSuite(bench, size, opts, 'read'));
        console.log(`\n${size.toLocaleString('en')} tickets:\n${endpointTable(suites.at(-1)!)}\n`);
      }
      console.log(`\n${header(opts, bench)}\n`);
      console.log(
        `How latency grows with the number of tickets (ms; search terms: ${JSON.stringify(SEARCH_TERMS)}):`,
      );
      console.log(scaleTable(suites));
      console.log(
        `targets: list and rare-term search p50 at ${opts.sizes.at(-1)} within ${TARGETS.growthAt1M}× of ${opts.sizes[0]}; common-term search p95 ≤ ${TARGETS.commonSearchP95Ms} ms at 1M`,
      );
      const file = await writeJson('scale', {
        kind: 'scale',
        startedAt,
        machine: machine(),
        options: opts,
        database: bench.label,
        suites,
      });
      console.log(`\nresults: ${file}`);
    } else {
      const suite = await runSuite(bench, opts.tickets, opts, 'all');
      console.log(`\n${header(opts, bench)}`);
      console.log(
        `dataset: ${opts.tickets.toLocaleString('en')} tickets; load average before ${fmtLoad(suite.loadBefore)}, after ${fmtLoad(suite.loadAfter)}\n`,
      );
      console.log(endpointTable(suite));
      const peak = Math.max(...suite.rows.filter((r) => r.kind !== 'floor').map((r) => r.peakRssMb));
      console.log(
        `\nAPI server peak RSS under load, per process: ${peak} MB (VmHWM over its whole life: ${suite.serverVmHwmMb} MB; target ≤ ${TARGETS.rssMb} MB)${suite.processes > 1 ? `; ${suite.processes} processes (primary + workers), ${suite.peakRssTotalMb} MB together` : ''}`,
      );
      if (suite.paced.length > 0) {
        console.log(
          `\nPaced open loop (evenly spaced sends, latency from each request's due time; bench/paced.ts):\n${pacedTable(suite.paced, TARGETS.pacedP99Ms, TARGETS.pacedRate)}`,
        );
      }
      const file = await writeJson(`endpoints-${opts.tickets}`, {
        kind: 'endpoints',
        startedAt,
        machine: machine(),
        options: opts,
        database: bench.label,
        ...suite,
      });
      console.log(`results: ${file}`);
    }
  } finally {
    await bench.stop();
  }
}

runBench('bench', main);
