import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import type { Config } from './config.js';
import type { Database } from './db/client.js';
import { type Clock, systemClock } from './lib/clock.js';
import { createCursorCodec } from './lib/cursor.js';
import { createOutboundClient } from './lib/outbound-http.js';
import { createBlobStore } from './lib/storage/index.js';
import { createAttachmentsRepository } from './modules/attachments/attachments.repository.js';
import { createAttachmentService } from './modules/attachments/attachments.service.js';
import { createUploadQuota } from './modules/attachments/upload-quota.js';
import { createUploadQuotaRepository } from './modules/attachments/upload-quota.repository.js';
import { createAuditRepository } from './modules/audit/audit.repository.js';
import { type AuditService, createAuditService } from './modules/audit/audit.service.js';
import { createAuditQueryService } from './modules/audit/audit-query.service.js';
import { createApiTokensRepository } from './modules/auth/api-tokens.repository.js';
import { createApiTokensService } from './modules/auth/api-tokens.service.js';
import { createAuthRepository } from './modules/auth/auth.repository.js';
import { createAuthService } from './modules/auth/auth.service.js';
import { createPasswordHasher } from './modules/auth/password.js';
import { createPasswordResetService } from './modules/auth/password-reset.service.js';
import { createActorDirectory, createTokenSigner } from './modules/auth/token-signer.js';
import { createBulkService } from './modules/bulk/bulk.service.js';
import { changesJobs } from './modules/changes/changes.jobs.js';
import { createChangesRepository } from './modules/changes/changes.repository.js';
import { type ChangeEvent, createChangesService } from './modules/changes/changes.service.js';
import { createCommentsRepository } from './modules/comments/comments.repository.js';
import { createCommentService } from './modules/comments/comments.service.js';
import { createDraftsRepository } from './modules/drafts/drafts.repository.js';
import { createDraftService } from './modules/drafts/drafts.service.js';
import { createHealthRepository } from './modules/health/health.repository.js';
import { createIdempotencyRepository } from './modules/idempotency/idempotency.repository.js';
import { createIdempotencyService } from './modules/idempotency/idempotency.service.js';
import { createInboundRepository } from './modules/inbound/inbound.repository.js';
import { createInboundService, inboundMessagesPurge } from './modules/inbound/inbound.service.js';
import { createJobsRepository } from './modules/jobs/jobs.repository.js';
import { createJobsService } from './modules/jobs/jobs.service.js';
import { corePurges, maintenanceJobs } from './modules/jobs/maintenance.js';
import { createMailModule } from './modules/mail/mail.module.js';
import { createReportsRepository } from './modules/reports/reports.repository.js';
import { createReportsService } from './modules/reports/reports.service.js';
import { slaJobDefinitions, slaSchedules } from './modules/sla/sla.jobs.js';
import { createSlaRepository } from './modules/sla/sla.repository.js';
import { createSlaService } from './modules/sla/sla.service.js';
import { createTeamsRepository } from './modules/teams/teams.repository.js';
import { createTeamsService } from './modules/teams/teams.service.js';
import { createTicketMergeService } from './modules/tickets/ticket-merge.service.js';
import { createTicketsRepository } from './modules/tickets/tickets.repository.js';
import { createTicketService } from './modules/tickets/tickets.service.js';
import { createAdminAccounts } from './modules/users/admin-bootstrap.js';
import { createUsersRepository } from './modules/users/users.repository.js';
import { createUsersService } from './modules/users/users.service.js';
import { createSecretBox } from './modules/webhooks/webhook-secrets.js';
import { createWebhookDelivery, parseRetrySchedule } from './modules/webhooks/webhooks.jobs.js';
import { createWebhooksRepository } from './modules/webhooks/webhooks.repository.js';
import { createWebhooksService } from './modules/webhooks/webhooks.service.js';

/** The settings the services read (all from config.ts; nothing here reads the environment). */
export type ServicesConfig = Pick<
  Config,
  | 'dataDir'
  | 'uploadMaxBytes'
  | 'accessTokenTtl'
  | 'refreshTokenTtl'
  | 'allowSignup'
  | 'passwordMinLength'
  | 'loginRateLimitPerAccount'
  | 'reportTimezone'
  | 'jobs'
  | 'changes'
  | 'storage'
  | 'uploadQuota'
  | 'mail'
  | 'passwordReset'
  | 'webhooks'
  | 'inbound'
  | 'isProduction'
> & { jwtSecret: string };

export interface ServiceOverrides {
  clock?: Clock;
  /** Where services that work outside a request (mail transport, webhook deliveries) log; silent when absent. */
  log?: FastifyBaseLogger;
  /** Tests replace the audit writer to prove a failed audit write rolls the change back. */
  audit?: AuditService;
}

/**
 * The composition root: every repository and service of the application, wired once with narrow
 * dependencies. The HTTP app (app.ts), the admin bootstrap at start-up and `npm run create-admin`
 * all take their services from here; a new module adds its service here and nowhere else.
 */
export function createServices(config: ServicesConfig, db: Database, overrides: ServiceOverrides = {}) {
  const clock = overrides.clock ?? systemClock;
  // Work outside a request (mail transport, webhook deliveries) logs here; silent for the command-line tools.
  const log = overrides.log ?? (pino({ level: 'silent' }) as unknown as FastifyBaseLogger);
  const cursorFor = (purpose: string) => createCursorCodec(config.jwtSecret, purpose);

  // Repositories: stateless query builders, each method takes the executor it runs on.
  const usersRepo = createUsersRepository();
  const auditRepo = createAuditRepository();
  const ticketsRepo = createTicketsRepository();
  const authRepo = createAuthRepository();

  const audit = overrides.audit ?? createAuditService({ audit: auditRepo });
  const hasher = createPasswordHasher();
  const actors = createActorDirectory({ db, users: usersRepo, sessions: authRepo });
  const signer = createTokenSigner({
    secret: config.jwtSecret,
    accessTokenTtl: config.accessTokenTtl,
    actors,
  });
  const health = createHealthRepository({ db });
  // Durable jobs: enqueue() in the caller's transaction; each module registers its kinds and schedules here.
  const jobs = createJobsService({ db, jobs: createJobsRepository() });
  // Change events (outbox): written beside the audit event of every ticket, comment and attachment change.
  const changesRepo = createChangesRepository();
  const changes = createChangesService({
    db,
    changes: changesRepo,
    clock,
    retentionDays: config.changes.retentionDays,
    log,
  });
  const idempotency = createIdempotencyService({ db, keys: createIdempotencyRepository(), clock });

  // SLA policies and each ticket's SLA clock; breach events carry the ticket as staff see it.
  const staffView = { id: '00000000-0000-0000-0000-000000000000', role: 'admin' as const };
  const sla = createSlaService({
    db,
    repo: createSlaRepository(),
    audit,
    changes,
    jobs,
    cursor: cursorFor('sla-policies'),
    clock,
    staffTicket: (view) => {
      const { allowedTransitions: _a, ...dto } = tickets.toDto(view, staffView);
      return dto;
    },
  });
  jobs.register(slaJobDefinitions(sla), slaSchedules);
  const tickets = createTicketService({
    db,
    tickets: ticketsRepo,
    users: usersRepo,
    audit,
    changes,
    sla,
    cursor: cursorFor('tickets'),
    clock,
  });
  const comments = createCommentService({
    db,
    tickets,
    ticketsRepo,
    comments: createCommentsRepository(),
    audit,
    changes,
    sla,
    cursor: cursorFor('comments'),
    clock,
  });
  const merge = createTicketMergeService({ db, tickets, ticketsRepo, audit, changes, clock });
  // Bulk changes: previewed, then run as a tracked job through the same PATCH code, one ticket per transaction.
  const bulk = createBulkService({
    db,
    tickets,
    ticketsRepo,
    users: usersRepo,
    audit,
    jobs,
    clock,
    secret: config.jwtSecret,
  });
  jobs.register(bulk.definitions);
  // Drafts: proposals applied at approval through the ticket and comment services' own transactional code.
  const drafts = createDraftService({
    db,
    drafts: createDraftsRepository(),
    tickets,
    ticketsRepo,
    comments,
    audit,
    changes,
    cursor: cursorFor('drafts'),
    clock,
  });
  // Bytes in the blob store under DATA_DIR/uploads, rows in PostgreSQL.
  const attachmentLimits = { maxFileBytes: config.uploadMaxBytes, maxFiles: 5 };
  const uploads = createBlobStore(config);
  const attachments = createAttachmentService({
    db,
    attachments: createAttachmentsRepository(),
    tickets,
    audit,
    changes,
    store: uploads,
    limits: attachmentLimits,
    quota: createUploadQuota(createUploadQuotaRepository(), config.uploadQuota),
  });
  const auditQueries = createAuditQueryService({ db, audit: auditRepo, tickets, cursor: cursorFor('audit') });

  const users = createUsersService({
    db,
    users: usersRepo,
    refreshTokens: authRepo,
    audit,
    hasher,
    cursor: cursorFor('users'),
    forgetActor: signer.forget,
    passwordMinLength: config.passwordMinLength,
  });
  const auth = createAuthService({
    db,
    users: usersRepo,
    usersService: users,
    auth: authRepo,
    audit,
    hasher,
    signer,
    clock,
    config,
  });
  const teams = createTeamsService({
    db,
    teams: createTeamsRepository(),
    users: usersRepo,
    audit,
    cursor: cursorFor('teams'),
  });
  const reports = createReportsService({
    db,
    reports: createReportsRepository(),
    tickets,
    clock,
    timezone: config.reportTimezone,
  });
  const maintenance = maintenanceJobs({
    db,
    store: uploads,
    purges: [...corePurges(config.jobs), inboundMessagesPurge],
    orphanGraceMinutes: config.jobs.orphanGraceMinutes,
    now: () => clock.now(),
  });
  jobs.register(maintenance.definitions, maintenance.schedules);
  const changeRetention = changesJobs(changes);
  jobs.register(changeRetention.definitions, changeRetention.schedules);

  const apiTokens = createApiTokensService({
    db,
    tokens: createApiTokensRepository(),
    audit,
    cursor: cursorFor('api-tokens'),
    clock,
  });
  // Email: notifications are enqueued by a change-feed subscriber in the change's transaction; jobs send.
  const mail = createMailModule({
    db,
    config,
    log,
    audit,
    jobs,
    clock,
  });
  jobs.register(mail.definitions);
  changes.onRecorded(mail.service.onChangeRecorded, mail.service.onChangesRecorded);
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
  // Email in: mail becomes tickets and public comments through the same services as the web, one
  // transaction per mail; replies are matched with the mail module's signed Reply-To and Message-IDs.
  const inbound = createInboundService({
    db,
    inbound: createInboundRepository(),
    users: usersRepo,
    usersService: users,
    tickets,
    ticketsRepo,
    comments,
    attachments,
    audit,
    replyAddress: mail.replyAddress,
    addresses: { from: config.mail.from.address, replyTo: config.mail.replyTo },
    createRequesters: config.inbound.createRequesters,
  });
  // Webhooks: deliveries of change events to other systems, each a job run by the worker. The outbound client
  // refuses private targets at connect time unless WEBHOOK_ALLOW_PRIVATE_NETWORKS; close() it on shutdown.
  const webhooksRepo = createWebhooksRepository();
  const webhookSecrets = createSecretBox(config.jwtSecret);
  const outbound = createOutboundClient({
    allowPrivateNetworks: config.webhooks.allowPrivateNetworks,
    timeoutMs: config.webhooks.timeoutMs,
  });
  const webhooks = createWebhooksService({
    db,
    webhooks: webhooksRepo,
    audit,
    jobs,
    secrets: webhookSecrets,
    cursor: cursorFor('webhooks'),
    clock,
    allowPrivateNetworks: config.webhooks.allowPrivateNetworks,
    requireHttps: config.isProduction,
  });
  const webhookDelivery = createWebhookDelivery({
    db,
    webhooks: webhooksRepo,
    jobs,
    secrets: webhookSecrets,
    outbound,
    clock,
    retrySchedule: parseRetrySchedule(config.webhooks.retrySchedule),
    log,
  });
  jobs.register(webhookDelivery.jobs());
  // Receivers get the contract's ChangeEvent as staff see it (internal notes included), nothing internal.
  const webhookEvent = (e: ChangeEvent) => ({
    id: e.id,
    type: e.type,
    occurredAt: e.occurredAt,
    ticketId: e.ticketId,
    actor: e.actor,
    data: e.data,
  });
  changes.onRecorded(
    (ex, e) => webhookDelivery.onRecorded(ex, webhookEvent(e), e.webhooksWanted),
    (ex, events) => webhookDelivery.onRecordedMany(ex, events.map(webhookEvent)),
  );

  const adminAccounts = createAdminAccounts({
    db,
    users: usersRepo,
    audit,
    hasher,
    passwordMinLength: config.passwordMinLength,
  });

  return {
    db,
    clock,
    audit,
    actors,
    health,
    jobs,
    changes,
    changesRepo,
    idempotency,
    tickets,
    comments,
    drafts,
    merge,
    bulk,
    attachments,
    attachmentLimits,
    auditQueries,
    users,
    auth,
    apiTokens,
    teams,
    reports,
    sla,
    mail,
    passwordReset,
    inbound,
    webhooks,
    webhookDelivery,
    outbound,
    adminAccounts,
  };
}

export type Services = ReturnType<typeof createServices>;
