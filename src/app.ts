import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from './config.js';
import { createDb, type Database, type DbHandle } from './db/client.js';
import { registerAuth } from './http/auth.js';
import { registerDocs } from './http/docs.js';
import { registerErrorHandling } from './http/errors.js';
import { registerMetrics } from './http/metrics.js';
import { registerOverloadProtection } from './http/overload.js';
import { registerRateLimit } from './http/rate-limit.js';
import { registerSecurity } from './http/security.js';
import { createFastSerializerCompiler } from './http/serializer.js';
import { registerDraining } from './http/shutdown.js';
import { type Clock, systemClock } from './lib/clock.js';
import { createCursorCodec } from './lib/cursor.js';
import { createLocalDiskStore } from './lib/storage/local-disk-store.js';
import { createAttachmentsRepository } from './modules/attachments/attachments.repository.js';
import { attachmentRoutes } from './modules/attachments/attachments.routes.js';
import { createAttachmentService } from './modules/attachments/attachments.service.js';
import { createAuditRepository } from './modules/audit/audit.repository.js';
import { auditRoutes } from './modules/audit/audit.routes.js';
import { createAuditService } from './modules/audit/audit.service.js';
import { createAuditQueryService } from './modules/audit/audit-query.service.js';
import { createAuthRepository } from './modules/auth/auth.repository.js';
import { authRoutes } from './modules/auth/auth.routes.js';
import { createAuthService } from './modules/auth/auth.service.js';
import { createPasswordHasher } from './modules/auth/password.js';
import { passwordResetRoutes } from './modules/auth/password-reset.routes.js';
import { createPasswordResetService } from './modules/auth/password-reset.service.js';
import { AccessDeniedError } from './modules/auth/permissions.js';
import { ChangeHub } from './modules/changes/change-hub.js';
import { createChangesRepository } from './modules/changes/changes.repository.js';
import { changesRoutes } from './modules/changes/changes.routes.js';
import { type ChangesService, createChangesService } from './modules/changes/changes.service.js';
import { createCommentsRepository } from './modules/comments/comments.repository.js';
import { commentRoutes } from './modules/comments/comments.routes.js';
import { createCommentService } from './modules/comments/comments.service.js';
import { healthRoutes } from './modules/health/health.routes.js';
import { createHealthService } from './modules/health/health.service.js';
import { createIdempotencyService } from './modules/idempotency/idempotency.service.js';
import { createJobRunner, type JobRunner } from './modules/jobs/job-runner.js';
import { registerJobMetrics } from './modules/jobs/jobs.metrics.js';
import { createJobsRepository } from './modules/jobs/jobs.repository.js';
import { jobsRoutes } from './modules/jobs/jobs.routes.js';
import { createJobsService, type JobsService } from './modules/jobs/jobs.service.js';
import { corePurges, maintenanceJobs } from './modules/jobs/maintenance.js';
import { createMailModule } from './modules/mail/mail.module.js';
import { mailRoutes } from './modules/mail/mail.routes.js';
import { createTeamsRepository } from './modules/teams/teams.repository.js';
import { teamsRoutes } from './modules/teams/teams.routes.js';
import { createTeamsService } from './modules/teams/teams.service.js';
import { createTicketsRepository } from './modules/tickets/tickets.repository.js';
import { ticketRoutes } from './modules/tickets/tickets.routes.js';
import { createTicketService } from './modules/tickets/tickets.service.js';
import { createUsersRepository } from './modules/users/users.repository.js';
import { usersRoutes } from './modules/users/users.routes.js';
import { createUsersService } from './modules/users/users.service.js';

export type AppConfig = Config & { jwtSecret: string; databaseUrl: string };

export interface AppOverrides {
  clock?: Clock;
  /** Replace the logger (tests pass false or a stream). */
  logger?: FastifyServerOptions['logger'];
  /** Extra plugins registered after the application's routes (tests use it for probe routes). */
  plugins?: FastifyPluginAsync[];
}

declare module 'fastify' {
  interface FastifyInstance {
    config: AppConfig;
    db: Database;
    /** The change feed: record(tx, …) in services; onRecorded(handler) for mail, webhooks. */
    changes: ChangesService;
    /** enqueue(), register() of job kinds and schedules. */
    jobs: JobsService;
    /** Not started by buildApp: server.ts starts it unless ROLE=api (worker.ts always). */
    jobRunner: JobRunner;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** package.json is one level above src/ (tsx) and two above dist/src/ (the production build). */
const pkg = ((): { version: string } => {
  for (const candidate of ['../package.json', '../../package.json']) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(url)) return JSON.parse(readFileSync(url, 'utf8')) as { version: string };
  }
  throw new Error('package.json not found');
})();

export function loggerOptions(config: Pick<Config, 'logLevel' | 'env'>): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    // Secrets never reach the logs, whatever a log call is handed.
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'password',
        '*.password',
        '*.currentPassword',
        '*.newPassword',
        '*.refreshToken',
        '*.accessToken',
        '*.token',
      ],
      censor: '[redacted]',
    },
    // The path only: a query string can carry a secret (GET /changes/stream?token=…) and is never logged.
    serializers: {
      req: (req: { method: string; url: string; id: string; ip?: string }) => ({
        method: req.method,
        url: req.url.split('?', 1)[0],
        remoteAddress: req.ip,
      }),
    },
    ...(config.env === 'development'
      ? {
          transport: {
            target: 'pino-pretty',
            options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true },
          },
        }
      : {}),
  };
}

/**
 * Builds a ready Fastify instance: used by server.ts and by the tests. Owns the pg pool
 * (closed on app.close()); the database must already be migrated.
 */
export async function buildApp(config: AppConfig, overrides: AppOverrides = {}): Promise<FastifyInstance> {
  const clock = overrides.clock ?? systemClock;
  const app = Fastify({
    logger: overrides.logger ?? loggerOptions(config),
    // X-Request-Id: keep a well-formed inbound id, otherwise make one. Logged as traceId on every line.
    genReqId: (req) => {
      const inbound = req.headers['x-request-id'];
      return typeof inbound === 'string' && REQUEST_ID.test(inbound) ? inbound : randomUUID();
    },
    logController: new LogController({ requestIdLogLabel: 'traceId' }),
    bodyLimit: config.bodyLimitBytes,
    // A number means "trust this many hops" (Fastify's types take it only as a function).
    trustProxy:
      typeof config.trustProxy === 'number'
        ? (
            (hops: number) => (_addr: string, i: number) =>
              i < hops
          )(config.trustProxy)
        : config.trustProxy,
    // Idle sockets are dropped after 30 s; a whole request (headers + body) must arrive within 120 s,
    // enough for a 10 MiB attachment at ~1 Mbit/s, short enough to shed slow-body (slowloris) clients.
    connectionTimeout: 30_000,
    requestTimeout: 120_000,
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 200 },
  });

  app.setValidatorCompiler(validatorCompiler);
  // Compiled from the zod response schemas; validated against them too outside production (src/http/serializer.ts).
  app.setSerializerCompiler(createFastSerializerCompiler({ validate: !config.isProduction }));
  registerErrorHandling(app);
  // JSON only: a text/plain body is a malformed request, not a string to validate.
  app.removeContentTypeParser('text/plain');
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  const dbHandle: DbHandle = createDb(config.databaseUrl, config.db, (err) =>
    app.log.warn({ err }, 'idle database connection lost'),
  );
  const { db } = dbHandle;
  app.decorate('config', config);
  app.decorate('db', db);
  // Durable jobs: modules enqueue in their transactions; every module's kinds and schedules are registered
  // below (jobs.register, an array each) and run by one runner. It stops (running jobs finish) before the pool closes.
  const jobs = createJobsService({ db, jobs: createJobsRepository() });
  const jobRunner = createJobRunner({
    databaseUrl: config.databaseUrl,
    registry: jobs,
    ...config.jobs,
    log: app.log,
  });
  app.decorate('jobs', jobs);
  app.decorate('jobRunner', jobRunner);
  app.addHook('onClose', async () => {
    await jobRunner.stop();
    await dbHandle.close();
  });

  // Repositories and services: plain factories with narrow dependencies.
  const usersRepo = createUsersRepository();
  const auditRepo = createAuditRepository();
  const audit = createAuditService({ audit: auditRepo });
  const health = createHealthService({ db });
  // Change events (outbox): written beside the audit event of every ticket, comment and attachment change.
  const changesRepo = createChangesRepository();
  const changes = createChangesService({
    db,
    changes: changesRepo,
    clock,
    retentionDays: config.changes.retentionDays,
  });
  app.decorate('changes', changes);
  // Attachments (issue 5): bytes in the blob store under DATA_DIR/uploads, rows in PostgreSQL.
  const attachmentLimits = { maxFileBytes: config.uploadMaxBytes, maxFiles: 5 };
  const uploads = createLocalDiskStore(path.join(config.dataDir, 'uploads'));
  const attachments = createAttachmentService({
    db,
    attachments: createAttachmentsRepository(),
    audit,
    changes,
    store: uploads,
    limits: attachmentLimits,
  });
  // Tickets, comments, audit queries (issue 4).
  const ticketsRepo = createTicketsRepository();
  const idempotency = createIdempotencyService({ db, clock });
  const tickets = createTicketService({
    db,
    tickets: ticketsRepo,
    users: usersRepo,
    audit,
    changes,
    idempotency,
    cursor: createCursorCodec(config.jwtSecret, 'tickets'),
    clock,
  });
  const comments = createCommentService({
    db,
    tickets,
    ticketsRepo,
    comments: createCommentsRepository(),
    audit,
    changes,
    idempotency,
    cursor: createCursorCodec(config.jwtSecret, 'comments'),
    clock,
  });
  const auditQueries = createAuditQueryService({
    db,
    audit: auditRepo,
    tickets,
    cursor: createCursorCodec(config.jwtSecret, 'audit'),
  });
  void clock;
  const maintenance = maintenanceJobs({
    db,
    store: uploads,
    purges: corePurges(config.jobs),
    orphanGraceMinutes: config.jobs.orphanGraceMinutes,
    now: () => clock.now(),
  });
  jobs.register(maintenance.definitions, maintenance.schedules);
  // Email: notifications are enqueued by a change-feed subscriber in the change's transaction; jobs send.
  const mail = createMailModule({ db, config, log: app.log, audit, jobs, clock });
  jobs.register(mail.definitions);
  changes.onRecorded(mail.service.onChangeRecorded);
  app.addHook('onClose', async () => mail.close());

  // Every refusal by a permission check is audited (access.denied), outside the refused change's transaction.
  app.addHook('onError', async (request, _reply, err) => {
    if (!(err instanceof AccessDeniedError) || !request.ctx) return;
    await audit
      .record(db, request.ctx, {
        action: 'access.denied',
        entityType: err.entity?.type ?? 'route',
        entityId: err.entity?.id ?? null,
        metadata: {
          operation: err.operation,
          method: request.method,
          route: request.routeOptions.url ?? null,
        },
      })
      .catch((auditErr) => request.log.error({ err: auditErr }, 'could not record access.denied'));
  });

  // Before docs and auth: CORS preflights are answered before authentication, overload is shed before any work.
  await registerSecurity(app, config);
  await registerOverloadProtection(app, config);
  await registerMetrics(app, config, dbHandle.pool, [(registry) => registerJobMetrics(registry, db)]);
  registerDraining(app);
  await registerDocs(app, pkg.version);
  const signer = await registerAuth(app, {
    secret: config.jwtSecret,
    accessTokenTtl: config.accessTokenTtl,
    loadActor: async (id) => {
      const user = await usersRepo.findById(db, id);
      return user?.active ? { id: user.id, role: user.role, name: user.name, email: user.email } : null;
    },
  });

  // Identity and access (issue 3): accounts, sessions and teams; they need the token signer above.
  const hasher = createPasswordHasher();
  const authRepo = createAuthRepository();
  const usersService = createUsersService({
    db,
    users: usersRepo,
    refreshTokens: authRepo,
    audit,
    hasher,
    cursor: createCursorCodec(config.jwtSecret, 'users'),
    forgetActor: signer.forget,
    passwordMinLength: config.passwordMinLength,
  });
  const authService = createAuthService({
    db,
    users: usersRepo,
    usersService,
    auth: authRepo,
    audit,
    hasher,
    signer,
    clock,
    config,
  });
  const passwordReset = createPasswordResetService({
    db,
    mail: mail.repository,
    users: usersRepo,
    auth: authRepo,
    audit,
    hasher,
    jobs,
    clock,
    forgetActor: signer.forget,
    config: {
      passwordMinLength: config.passwordMinLength,
      perAccountPer15Min: config.passwordReset.perAccountPer15Min,
    },
  });
  const teamsService = createTeamsService({
    db,
    teams: createTeamsRepository(),
    users: usersRepo,
    audit,
    cursor: createCursorCodec(config.jwtSecret, 'teams'),
  });

  // Rate limits apply to routes registered after this line (route-level hooks run after the auth hook).
  await registerRateLimit(app, config);

  // ---- routes: one registration per module ----
  await app.register(healthRoutes, { health });
  await app.register(authRoutes, {
    prefix: '/api/v1',
    auth: authService,
    allowSignup: config.allowSignup,
    loginRateLimitPerIp: config.loginRateLimitPerIp,
  });
  await app.register(passwordResetRoutes, {
    prefix: '/api/v1',
    passwordReset,
    perIpPer15Min: config.passwordReset.perIpPer15Min,
  });
  await app.register(mailRoutes, { prefix: '/api/v1', mail: mail.service });
  await app.register(usersRoutes, { prefix: '/api/v1', users: usersService });
  await app.register(teamsRoutes, { prefix: '/api/v1', teams: teamsService });
  await app.register(attachmentRoutes, { prefix: '/api/v1', attachments, limits: attachmentLimits });
  await app.register(ticketRoutes, { prefix: '/api/v1', tickets });
  await app.register(commentRoutes, { prefix: '/api/v1', comments });
  await app.register(auditRoutes, { prefix: '/api/v1', auditQueries });
  // Live stream fan-out: one LISTEN connection per process, started by the first stream.
  const hub = new ChangeHub({
    db,
    changes: changesRepo,
    databaseUrl: config.databaseUrl,
    log: app.log,
    heartbeatMs: config.changes.heartbeatMs,
    authCheckMs: config.changes.authCheckMs,
    streamsPerUser: config.changes.streamsPerUser,
  });
  // Open streams never end by themselves: close them (with a reason) before the server waits for connections.
  app.addHook('preClose', () => hub.stop());
  await app.register(changesRoutes, {
    prefix: '/api/v1',
    changes,
    hub,
    verifyAccessToken: signer.verifyAccessToken,
    stream: {
      retryMs: config.changes.retryMs,
      bufferBytes: config.changes.bufferBytes,
      streamsPerUser: config.changes.streamsPerUser,
    },
  });
  await app.register(jobsRoutes, { prefix: '/api/v1', jobs });

  for (const plugin of overrides.plugins ?? []) await app.register(plugin);

  await app.ready();
  return app.withTypeProvider<ZodTypeProvider>();
}
