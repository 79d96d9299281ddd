/**
 * `npx tsx bench/cpuprofile-top.ts <file.cpuprofile> [--top 10] [--from µs] [--to µs]`: the frames with the
 * most self time in a V8 CPU profile (node --cpu-prof), as a share of the samples, plus GC and idle.
 * --from/--to keep only samples inside that window (the profile's clock: CLOCK_MONOTONIC µs, the same as
 * process.hrtime), so start-up and warm-up can be left out.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface TopFrame {
  frame: string;
  selfMs: number;
  share: number;
}

function shortUrl(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const src = url.search(/\/(src|dist|bench)\//);
  return src >= 0 ? url.slice(src + 1) : url.replace(/^file:\/\//, '');
}

/** Self time per frame (function + file + line) within [from, to], busiest first; idle excluded from shares. */
export function topFrames(
  profile: CpuProfile,
  opts: { top?: number; from?: number; to?: number } = {},
): { frames: TopFrame[]; busyMs: number; idleMs: number; windowMs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  let t = profile.startTime;
  let busy = 0;
  let idle = 0;
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if ((opts.from !== undefined && t < opts.from) || (opts.to !== undefined && t > opts.to)) continue;
    first = Math.min(first, t);
    last = Math.max(last, t);
    const cf = byId.get(profile.samples[i]!);
    if (!cf) continue;
    // Each sample stands for the interval to the next one; dt of the following sample is that interval.
    const weight = (profile.timeDeltas[i + 1] ?? dt) / 1000;
    if (cf.functionName === '(idle)') {
      idle += weight;
      continue;
    }
    busy += weight;
    const name =
      cf.url || cf.functionName.startsWith('(')
        ? `${cf.functionName || '(anonymous)'} ${shortUrl(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`
        : cf.functionName || '(anonymous)';
    self.set(name.trim(), (self.get(name.trim()) ?? 0) + weight);
  }
  const frames = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, opts.top ?? 10)
    .map(([frame, ms]) => ({ frame, selfMs: Math.round(ms), share: busy ? ms / busy : 0 }));
  return {
    frames,
    busyMs: Math.round(busy),
    idleMs: Math.round(idle),
    windowMs: Number.isFinite(first) ? Math.round((last - first) / 1000) : 0,
  };
}

export function formatTop(r: ReturnType<typeof topFrames>): string {
  const lines = r.frames.map(
    (f, i) =>
      `${String(i + 1).padStart(2)}. ${(f.share * 100).toFixed(1).padStart(5)} %  ${String(f.selfMs).padStart(6)} ms  ${f.frame}`,
  );
  return [
    ...lines,
    `    busy ${r.busyMs} ms, idle ${r.idleMs} ms over a ${r.windowMs} ms window (shares are of busy time)`,
  ].join('\n');
}

if (process.argv[1]?.endsWith('cpuprofile-top.ts') || process.argv[1]?.endsWith('cpuprofile-top.js')) {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--'));
  if (!file) {
    console.error('usage: npx tsx bench/cpuprofile-top.ts <file.cpuprofile> [--top N] [--from µs] [--to µs]');
    process.exit(2);
  }
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  console.log(formatTop(topFrames(profile, { top: opt('top'), from: opt('from'), to: opt('to') })));
}
