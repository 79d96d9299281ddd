/** Command line of `npm run bench -- [options]`. */
export interface BenchOptions {
  tickets: number;
  scale: boolean;
  /** Sizes used by --scale. */
  sizes: number[];
  /** Measured seconds per scenario. */
  duration: number;
  /** Warm-up seconds per scenario (not measured). */
  warmup: number;
  connections: number;
  /** Only scenarios whose name contains one of these (empty: all). */
  only: string[];
  /** Admin URL of the PostgreSQL server that holds the bench databases; 'embedded' for the embedded one. */
  pg: string;
  skipBuild: boolean;
  reseed: boolean;
  /** DB_POOL_MAX for the API server and the floor (undefined: the application's default). */
  pool: number | undefined;
  /** The job queue bench instead of the endpoint table (bench/jobs.ts). */
  jobs: boolean;
  /** A bulk change of 1,000 tickets instead of the endpoint table (bench/bulk.ts). */
  bulk: boolean;
  jobCount: number;
  latencySamples: number;
  /** JOBS_CONCURRENCY of the benched worker (undefined: the application's default). */
  jobConcurrency: number | undefined;
  /** WEB_CONCURRENCY of the API server (undefined: the application's default, one worker per CPU). */
  webConcurrency: number | undefined;
  /** Fixed rates (req/s) of the paced open-loop runs of list and get; empty: none. */
  rates: number[];
  /** Measured seconds per paced run. */
  pacedDuration: number;
}

export const USAGE = `npm run bench -- [options]
  --tickets N        dataset size for the endpoint table (default 100000)
  --scale            list and search at 10k, 100k and 1M tickets; prints how latency grows
  --sizes a,b,c      sizes for --scale (default 10000,100000,1000000)
  --duration S       measured seconds per scenario (default 10)
  --warmup S         warm-up seconds per scenario, not measured (default 3)
  --connections C    concurrent connections (default 50)
  --web-concurrency N  WEB_CONCURRENCY of the API server (default: the application's, one worker per CPU)
  --rates a,b,c      paced open-loop runs of list and get at these req/s (default 150,250,500; none: skip)
  --paced-duration S measured seconds per paced run (default 10; warm-up: --warmup)
  --only a,b         run only scenarios whose name contains one of these words
  --pool N           DB_POOL_MAX for the API and the floor (default: the application's default)
  --pg URL|embedded  PostgreSQL server for the bench databases
                     (default postgres://postgres@127.0.0.1:5432/postgres, env BENCH_PG_URL)
  --reseed           drop and re-seed the bench database even if it already has the right size
  --skip-build       use the existing dist/ (default: npm run build first)
  --bulk             a bulk change of 1,000 tickets: dry run and job, wall time and database time
  --jobs             the job queue instead: no-op throughput of one worker and commit → job start latency
  --job-count N      no-op jobs drained for the throughput figure (default 20000; max 200000)
  --latency-samples N  jobs timed one by one for commit → start (default 300; max 5000)
  --job-concurrency N  JOBS_CONCURRENCY of the benched worker (default: the application's default)`;

function positiveInt(name: string, v: string | undefined): number {
  const n = Number(v?.replace(/_/g, ''));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} needs a positive integer, got ${v}`);
  return n;
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv): BenchOptions {
  const o: BenchOptions = {
    tickets: 100_000,
    scale: false,
    sizes: [10_000, 100_000, 1_000_000],
    duration: 10,
    warmup: 3,
    connections: 50,
    only: [],
    pg: env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    skipBuild: false,
    reseed: false,
    pool: undefined,
    jobs: false,
    bulk: false,
    jobCount: 20_000,
    latencySamples: 300,
    jobConcurrency: undefined,
    webConcurrency: undefined,
    rates: [150, 250, 500],
    pacedDuration: 10,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--tickets':
        o.tickets = positiveInt('tickets', value());
        break;
      case '--scale':
        o.scale = true;
        break;
      case '--sizes':
        o.sizes = (value() ?? '').split(',').map((s) => positiveInt('sizes', s));
        break;
      case '--duration':
        o.duration = positiveInt('duration', value());
        break;
      case '--warmup':
        o.warmup = Number(value());
        if (!(o.warmup >= 0)) throw new Error('--warmup needs a number of seconds ≥ 0');
        break;
      case '--connections':
        o.connections = positiveInt('connections', value());
        break;
      case '--only':
        o.only = (value() ?? '').split(',').filter(Boolean);
        break;
      case '--pool':
        o.pool = positiveInt('pool', value());
        break;
      case '--pg':
        o.pg = value() ?? o.pg;
        break;
      case '--reseed':
        o.reseed = true;
        break;
      case '--skip-build':
        o.skipBuild = true;
        break;
      case '--bulk':
        o.bulk = true;
        break;
      case '--jobs':
        o.jobs = true;
        break;
      case '--job-count':
        o.jobCount = positiveInt('job-count', value());
        break;
      case '--latency-samples':
        o.latencySamples = positiveInt('latency-samples', value());
        break;
      case '--job-concurrency':
        o.jobConcurrency = positiveInt('job-concurrency', value());
        break;
      case '--web-concurrency':
        o.webConcurrency = positiveInt('web-concurrency', value());
        break;
      case '--rates': {
        const v = value() ?? '';
        o.rates =
          v === 'none'
            ? []
            : v
                .split(',')
                .filter(Boolean)
                .map((r) => positiveInt('rates', r));
        break;
      }
      case '--paced-duration':
        o.pacedDuration = positiveInt('paced-duration', value());
        break;
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (o.duration > 120) throw new Error('--duration is capped at 120 s (the run must stay bounded)');
  if (o.connections > 500) throw new Error('--connections is capped at 500');
  if (o.jobCount > 200_000) throw new Error('--job-count is capped at 200000');
  if (o.pacedDuration > 120) throw new Error('--paced-duration is capped at 120 s');
  if (o.rates.some((r) => r > 20_000)) throw new Error('--rates are capped at 20000 req/s');
  if (o.webConcurrency !== undefined && o.webConcurrency > 64)
    throw new Error('--web-concurrency is capped at 64');
  if (o.latencySamples > 5000) throw new Error('--latency-samples is capped at 5000');
  return o;
}
