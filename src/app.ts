import { existsSync, readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from './config.js';
import { createDb, type Database, type DbHandle } from './db/client.js';
import { registerAccessDeniedAudit } from './http/access-denied-audit.js';
import { registerAuth } from './http/auth.js';
import { registerDocs } from './http/docs.js';
import { clientErrorHandler, frameworkErrorHandler, registerErrorHandling } from './http/errors.js';
import { refuseUnknownQueryParameters } from './http/input-schemas.js';
import { livenessServerFactory } from './http/liveness.js';
import { loggerOptions, withSafeErrors } from './http/logger.js';
import { registerMetrics } from './http/metrics.js';
import { registerOverloadProtection } from './http/overload.js';
import { registerRateLimit } from './http/rate-limit.js';
import { registerRequestIdHeader, requestIdOptions } from './http/request-id.js';
import { registerSecurity } from './http/security.js';
import { createFastSerializerCompiler } from './http/serializer.js';
import { type DrainState, registerDraining } from './http/shutdown.js';
import { registerUnreadBodyDrain } from './http/unread-body.js';
import { attachmentsRoutes } from './modules/attachments/attachments.routes.js';
import { auditRoutes } from './modules/audit/audit.routes.js';
import { apiTokenRoutes } from './modules/auth/api-tokens.routes.js';
import { authRoutes } from './modules/auth/auth.routes.js';
import { passwordResetRoutes } from './modules/auth/password-reset.routes.js';
import { bulkRoutes } from './modules/bulk/bulk.routes.js';
import { ChangeHub } from './modules/changes/change-hub.js';
import { changesRoutes } from './modules/changes/changes.routes.js';
import type { ChangesService } from './modules/changes/changes.service.js';
import { commentsRoutes } from './modules/comments/comments.routes.js';
import { draftsRoutes } from './modules/drafts/drafts.routes.js';
import { healthRoutes } from './modules/health/health.routes.js';
import { inboundRoutes } from './modules/inbound/inbound.routes.js';
import { createJobRunner, type JobRunner } from './modules/jobs/job-runner.js';
import { registerJobMetrics } from './modules/jobs/jobs.metrics.js';
import { jobsRoutes } from './modules/jobs/jobs.routes.js';
import type { JobsService } from './modules/jobs/jobs.service.js';
import { mailRoutes } from './modules/mail/mail.routes.js';
import { reportsRoutes } from './modules/reports/reports.routes.js';
import { slaRoutes } from './modules/sla/sla.routes.js';
import { teamsRoutes } from './modules/teams/teams.routes.js';
import { ticketMergeRoutes } from './modules/tickets/ticket-merge.routes.js';
import { ticketsRoutes } from './modules/tickets/tickets.routes.js';
import { usersRoutes } from './modules/users/users.routes.js';
import { webhookRoutes } from './modules/webhooks/webhooks.routes.js';
import { createServices, type ServiceOverrides, type Services } from './services.js';

export { loggerOptions } from './http/logger.js';

export type AppConfig = Config & { jwtSecret: string; databaseUrl: string };

export interface AppOverrides extends ServiceOverrides {
  /** Replace the logger (tests pass false or a stream). */
  logger?: FastifyServerOptions['logger'];
  /** Extra plugins registered after the application's routes (tests use it for probe routes). */
  plugins?: FastifyPluginAsync[];
}

declare module 'fastify' {
  interface FastifyInstance {
    config: AppConfig;
    db: Database;
    services: Services;
    /** enqueue(), register() of job kinds and schedules. */
    jobs: JobsService;
    /** Not started by buildApp: server.ts starts it unless ROLE=api (worker.ts always). */
    jobRunner: JobRunner;
    /** The change feed: record(tx, …) in services; onRecorded(handler) for mail, webhooks. */
    changes: ChangesService;
    /** This process's live-stream fan-out (its open streams). */
    changeHub: ChangeHub;
  }
}

/** package.json is one level above src/ (tsx) and two above dist/src/ (the production build). */
const pkg = ((): { version: string } => {
  for (const candidate of ['../package.json', '../../package.json']) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(url)) return JSON.parse(readFileSync(url, 'utf8')) as { version: string };
  }
  throw new Error('package.json not found');
})();

/**
 * Idle sockets are dropped after 30 s; a whole request (headers + body) must arrive within 120 s,
 * enough for a 10 MiB attachment at ~1 Mbit/s, short enough to shed slow-body (slowloris) clients.
 */
const SERVER_TIMEOUTS = { connectionTimeout: 30_000, requestTimeout: 120_000, keepAliveTimeout: 72_000 };

/**
 * Builds a ready Fastify instance: used by server.ts and by the tests. Owns the pg pool
 * (closed on app.close()); the database must already be migrated.
 */
export async function buildApp(config: AppConfig, overrides: AppOverrides = {}): Promise<FastifyInstance> {
  const drain: DrainState = { draining: false };
  const app = Fastify({
    serverFactory: livenessServerFactory({ draining: () => drain.draining, ...SERVER_TIMEOUTS }),
    logger: withSafeErrors(overrides.logger ?? loggerOptions(config)),
    // Errors found below the routes (bad percent-encoding, headers over 16 KiB, broken framing) are problems too.
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    ...requestIdOptions,
    bodyLimit: config.bodyLimitBytes,
    // A number means "trust this many hops" (Fastify's types take it only as a function).
    trustProxy:
      typeof config.trustProxy === 'number'
        ? (
            (hops: number) => (_addr: string, i: number) =>
              i < hops
          )(config.trustProxy)
        : config.trustProxy,
    ...SERVER_TIMEOUTS,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 200 },
  });

  app.setValidatorCompiler(validatorCompiler);
  // Compiled from the zod response schemas; validated against them too outside production (src/http/serializer.ts).
  app.setSerializerCompiler(createFastSerializerCompiler({ validate: !config.isProduction }));
  registerErrorHandling(app);
  refuseUnknownQueryParameters(app);
  // JSON only: a text/plain body is a malformed request, not a string to validate.
  app.removeContentTypeParser('text/plain');
  registerRequestIdHeader(app);

  const dbHandle: DbHandle = createDb(config.databaseUrl, config.db, (err) =>
    app.log.warn({ err }, 'idle database connection lost'),
  );
  const { db } = dbHandle;
  const services = createServices(config, db, { ...overrides, log: app.log });
  app.decorate('config', config);
  app.decorate('db', db);
  app.decorate('services', services);
  app.decorate('idempotency', services.idempotency);
  // Durable jobs: services enqueue in their transactions; every module's kinds and schedules are registered in
  // the composition root and run by one runner. It stops (running jobs finish) before the pool closes.
  const jobRunner = createJobRunner({
    databaseUrl: config.databaseUrl,
    registry: services.jobs,
    ...config.jobs,
    log: app.log,
  });
  app.decorate('jobs', services.jobs);
  app.decorate('changes', services.changes);
  app.decorate('jobRunner', jobRunner);
  app.addHook('onClose', async () => {
    await jobRunner.stop();
    services.mail.close();
    services.outbound.close();
    await dbHandle.close();
  });
  registerAccessDeniedAudit(app, services.audit, db);

  // Before docs and auth: CORS preflights are answered before authentication, overload is shed before any work.
  await registerSecurity(app, config);
  await registerOverloadProtection(app, config);
  await registerMetrics(app, config, dbHandle.pool, [(registry) => registerJobMetrics(registry, db)]);
  registerDraining(app, drain);
  registerUnreadBodyDrain(app);
  await registerDocs(app, pkg.version);
  // Rate limits apply to routes registered after this line; route-level hooks run after the (global) auth
  // hook, so they see the actor. Requests the auth hook refuses are counted per IP by limitRejected.
  const limitRejected = await registerRateLimit(app, config);
  const { verifyAccessClaims } = await registerAuth(app, {
    secret: config.jwtSecret,
    accessTokenTtl: config.accessTokenTtl,
    findActor: services.actors.find,
    isSessionLive: services.actors.isSessionLive,
    findApiToken: services.apiTokens.findByHash,
    touchApiToken: services.apiTokens.recordUse,
    limitRejected,
  });

  // ---- routes: one registration per module ----
  await app.register(healthRoutes, { health: services.health });
  await app.register(authRoutes, {
    prefix: '/api/v1',
    auth: services.auth,
    allowSignup: config.allowSignup,
    loginRateLimitPerIp: config.loginRateLimitPerIp,
  });
  await app.register(apiTokenRoutes, { prefix: '/api/v1', tokens: services.apiTokens });
  await app.register(passwordResetRoutes, {
    prefix: '/api/v1',
    passwordReset: services.passwordReset,
    perIpPer15Min: config.passwordReset.perIpPer15Min,
  });
  await app.register(mailRoutes, { prefix: '/api/v1', mail: services.mail.service });
  await app.register(usersRoutes, { prefix: '/api/v1', users: services.users });
  await app.register(teamsRoutes, { prefix: '/api/v1', teams: services.teams });
  await app.register(attachmentsRoutes, {
    prefix: '/api/v1',
    attachments: services.attachments,
    limits: services.attachmentLimits,
  });
  await app.register(ticketsRoutes, { prefix: '/api/v1', tickets: services.tickets });
  await app.register(commentsRoutes, { prefix: '/api/v1', comments: services.comments });
  await app.register(bulkRoutes, { prefix: '/api/v1', bulk: services.bulk });
  await app.register(ticketMergeRoutes, { prefix: '/api/v1', merge: services.merge });
  await app.register(draftsRoutes, { prefix: '/api/v1', drafts: services.drafts });
  await app.register(auditRoutes, { prefix: '/api/v1', auditQueries: services.auditQueries });
  await app.register(reportsRoutes, { prefix: '/api/v1', reports: services.reports });
  await app.register(slaRoutes, { prefix: '/api/v1', sla: services.sla });
  await app.register(jobsRoutes, { prefix: '/api/v1', jobs: services.jobs });
  await app.register(webhookRoutes, { prefix: '/api/v1', webhooks: services.webhooks });
  await app.register(inboundRoutes, {
    prefix: '/api/v1',
    inbound: services.inbound,
    token: config.inbound.token,
    maxBytes: config.inbound.maxBytes,
  });
  // Live stream fan-out: one LISTEN connection per process, started by the first stream.
  const hub = new ChangeHub({
    db,
    changes: services.changesRepo,
    databaseUrl: config.databaseUrl,
    log: app.log,
    heartbeatMs: config.changes.heartbeatMs,
    authCheckMs: config.changes.authCheckMs,
    streamsPerUser: config.changes.streamsPerUser,
  });
  app.decorate('changeHub', hub);
  // Open streams never end by themselves: close them (with a reason) before the server waits for connections.
  app.addHook('preClose', () => hub.stop());
  await app.register(changesRoutes, {
    prefix: '/api/v1',
    changes: services.changes,
    hub,
    verifyAccessClaims,
    stream: {
      retryMs: config.changes.retryMs,
      bufferBytes: config.changes.bufferBytes,
      streamsPerUser: config.changes.streamsPerUser,
    },
  });

  for (const plugin of overrides.plugins ?? []) await app.register(plugin);

  await app.ready();
  return app.withTypeProvider<ZodTypeProvider>();
}
