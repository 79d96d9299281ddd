import cluster, { type Worker } from 'node:cluster';
import {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from 'prom-client';

/**
 * /metrics in cluster mode: whichever HTTP worker answers the scrape asks the primary, the primary collects
 * every worker's registry (as JSON, over the cluster IPC channel) and merges them with prom-client's
 * AggregatorRegistry (counters and histograms summed; gauges by their `aggregator`, e.g. `first` for the
 * queue figures every worker reads from the same database). Without it each scrape would show one worker's
 * counters, and Prometheus would see them jump between workers as resets.
 */
const TAG = '__helpdeskMetrics';
/** A worker that does not send its part in time is left out of that scrape (it may be restarting). */
const COLLECT_TIMEOUT_MS = 3000;

type Part = MetricObjectWithValues<MetricValue<string>>[];
type Message =
  | { [TAG]: 'ask'; id: number }
  | { [TAG]: 'collect'; id: number }
  | { [TAG]: 'part'; id: number; metrics: Part }
  | { [TAG]: 'whole'; id: number; text: string; workers: number };

const isMessage = (m: unknown): m is Message =>
  typeof m === 'object' && m !== null && TAG in m && typeof (m as { id?: unknown }).id === 'number';

/** In the primary: answers a worker's scrape with the merge of every live worker's metrics. */
export function serveClusterMetrics(): { stop(): void } {
  let nextRound = 0;
  const rounds = new Map<
    number,
    { asker: Worker; askId: number; waiting: Set<number>; parts: Part[]; timer: NodeJS.Timeout }
  >();

  const finish = (roundId: number) => {
    const round = rounds.get(roundId);
    if (!round) return;
    rounds.delete(roundId);
    clearTimeout(round.timer);
    void AggregatorRegistry.aggregate(round.parts)
      .metrics()
      .then((text) => {
        if (round.asker.isConnected())
          round.asker.send({ [TAG]: 'whole', id: round.askId, text, workers: round.parts.length });
      });
  };

  const onMessage = (worker: Worker, m: unknown) => {
    if (!isMessage(m)) return;
    if (m[TAG] === 'ask') {
      const roundId = nextRound++;
      const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w?.isConnected());
      rounds.set(roundId, {
        asker: worker,
        askId: m.id,
        waiting: new Set(live.map((w) => w.id)),
        parts: [],
        timer: setTimeout(() => finish(roundId), COLLECT_TIMEOUT_MS),
      });
      for (const w of live) w.send({ [TAG]: 'collect', id: roundId });
    } else if (m[TAG] === 'part') {
      const round = rounds.get(m.id);
      if (!round) return;
      round.parts.push(m.metrics);
      round.waiting.delete(worker.id);
      if (round.waiting.size === 0) finish(m.id);
    }
  };
  cluster.on('message', onMessage);
  return {
    stop() {
      cluster.off('message', onMessage);
      for (const r of rounds.values()) clearTimeout(r.timer);
      rounds.clear();
    },
  };
}

/**
 * In an HTTP worker: sends this worker's registry when the primary collects, and returns the function the
 * /metrics route calls for the merged text (rejects when the primary does not answer in time).
 */
export function clusterMetricsSource(registry: Registry): () => Promise<string> {
  let nextAsk = 0;
  const asks = new Map<
    number,
    { resolve(text: string): void; reject(err: Error): void; timer: NodeJS.Timeout }
  >();
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    if (m[TAG] === 'collect') {
      void registry.getMetricsAsJSON().then((metrics) => {
        if (process.connected) process.send?.({ [TAG]: 'part', id: m.id, metrics } satisfies Message);
      });
    } else if (m[TAG] === 'whole') {
      const ask = asks.get(m.id);
      if (!ask) return;
      asks.delete(m.id);
      clearTimeout(ask.timer);
      ask.resolve(m.text);
    }
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      if (!process.connected || !process.send) {
        reject(new Error('cluster primary not connected'));
        return;
      }
      const id = nextAsk++;
      const timer = setTimeout(() => {
        asks.delete(id);
        reject(new Error('cluster primary did not answer the metrics scrape'));
      }, COLLECT_TIMEOUT_MS + 2000);
      timer.unref();
      asks.set(id, { resolve, reject, timer });
      process.send({ [TAG]: 'ask', id } satisfies Message);
    });
}

/** True in an HTTP worker of cluster mode (forked by the primary, with an IPC channel). */
export const inClusterWorker = (): boolean => cluster.isWorker && typeof process.send === 'function';
