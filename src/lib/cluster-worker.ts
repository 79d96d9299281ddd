import cluster from 'node:cluster';

/**
 * Set in the environment of the HTTP workers src/cluster.ts forks. node:cluster alone is not enough: under
 * another cluster manager (pm2 in cluster mode) every process is a cluster worker, with no primary of ours
 * to answer.
 */
export const CLUSTER_WORKER_MARKER = 'HELPDESK_CLUSTER_WORKER';

/** Whether this process is an HTTP worker forked by this application's primary (WEB_CONCURRENCY > 1). */
export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env[CLUSTER_WORKER_MARKER] === '1';
}
