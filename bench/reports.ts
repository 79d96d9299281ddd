import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ensureDataset, openBenchServer } from './database.js';
import { benchServerEnv, freePort, killChildren, run, startServer } from './proc.js';
import { mb, writeJson } from './report.js';

const log = (msg: string) => console.log(`[bench:reports ${new Date().toISOString().slice(11, 19)}] ${msg}`);

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function main() {
  const size = Number(arg('tickets', '1000000'));
  const runs = Number(arg('runs', '20'));
  const pgUrl = arg('pg', process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  await mkdir('bench/results', { recursive: true });
  log('building the production server');
  await run('npm', ['run', '--silent', 'build']);
  const bench = await openBenchServer(pgUrl);
  try {
    const name = process.argv.includes('--db') ? arg('db', '') : undefined;
    const url = await ensureDataset(bench, size, { reseed: process.argv.includes('--reseed'), log, name });
    const port = process.argv.includes('--port') ? Number(arg('port', '0')) : await freePort();
    const api = await startServer({
      name: 'api',
      script: path.resolve('dist/src/server.js'),
      env: benchServerEnv({
        name: 'reports',
        port,
        databaseUrl: url,
        extra: {
          DB_STATEMENT_TIMEOUT_MS: '60000',
          // The API alone: a worker in this process would also run whatever the shared database holds for it
          // (an SLA pass every 15 s over tickets bench/sla.ts gave due times); its memory is not the export's.
          ROLE: 'api',
        },
      }),
      port,
      readyPath: '/readyz',
      logFile: path.resolve('bench/results/reports-api.log'),
    });
    try {
      const admin = { email: 'admin1@seed.example' };
      const login = await fetch(`${api.baseUrl}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          email: admin.email,
          password: process.env.BENCH_SEED_PASSWORD ?? 'bench-password-123',
        }),
      });
      const { accessToken } = (await login.json()) as { accessToken: string };
      const headers = { authorization: `Bearer ${accessToken}` };

      // Overview: one client, one request at a time, after two warm-up calls.
      const times: number[] = [];
      for (let i = 0; i < runs + 2; i++) {
        const t0 = performance.now();
        const res = await fetch(`${api.baseUrl}/api/v1/reports/overview`, { headers });
        const body = (await res.json()) as { created: number };
        if (res.status !== 200) throw new Error(`overview answered ${res.status}: ${JSON.stringify(body)}`);
        if (i >= 2) times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const overview = {
        runs,
        p50Ms: Math.round(percentile(times, 50)),
        p95Ms: Math.round(percentile(times, 95)),
        maxMs: Math.round(times.at(-1)!),
      };
      log(
        `overview (30 days, ${size.toLocaleString('en')} tickets): p50 ${overview.p50Ms} ms, p95 ${overview.p95Ms} ms`,
      );

      // Export: every live ticket, read as fast as the client can; RSS sampled by the harness.
      api.resetPeak();
      const baseline = await currentRss(api.pid);
      const t0 = performance.now();
      const res = await fetch(`${api.baseUrl}/api/v1/tickets/export`, { headers });
      if (res.status !== 200 || !res.body) throw new Error(`export answered ${res.status}`);
      let bytes = 0;
      let rows = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.byteLength;
        for (const b of chunk) if (b === 0x0a) rows++;
      }
      const seconds = (performance.now() - t0) / 1000;
      const exp = {
        lines: rows,
        mb: mb(bytes),
        seconds: Math.round(seconds * 10) / 10,
        rowsPerSec: Math.round(rows / seconds),
        rssBeforeMb: mb(baseline),
        rssPeakMb: mb(api.peakRss()),
        rssGrowthMb: mb(api.peakRss() - baseline),
      };
      log(
        `export: ${exp.lines.toLocaleString('en')} lines, ${exp.mb} MB in ${exp.seconds} s (${exp.rowsPerSec} lines/s); server RSS ${exp.rssBeforeMb} → peak ${exp.rssPeakMb} MB (growth ${exp.rssGrowthMb} MB)`,
      );
      const file = await writeJson('reports', { size, overview, export: exp });
      log(`written ${file}`);
    } finally {
      await api.stop();
    }
  } finally {
    await bench.stop();
  }
}

async function currentRss(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(killChildren);
