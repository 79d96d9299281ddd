import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../../config.js';
import type { Database } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import type { AuditService } from '../audit/audit.service.js';
import { createCommentsRepository } from '../comments/comments.repository.js';
import type { JobsService } from '../jobs/jobs.service.js';
import { createTicketsRepository } from '../tickets/tickets.repository.js';
import { createUsersRepository } from '../users/users.repository.js';
import { createMailJobs } from './mail.jobs.js';
import { createMailRepository } from './mail.repository.js';
import { createMailService } from './mail.service.js';
import { createReplyAddressCodec } from './mail-headers.js';
import { createMailTransport } from './mail-transport.js';

export interface MailModuleDeps {
  db: Database;
  config: Pick<Config, 'mail' | 'dataDir'> & { jwtSecret: string };
  log: FastifyBaseLogger;
  audit: AuditService;
  jobs: Pick<JobsService, 'enqueue'>;
  clock: Clock;
}

/**
 * Everything mail, assembled for the composition root: the service (preferences, change-feed subscriber),
 * the job definitions for the runner, the reply-address codec (inbound mail verifies Reply-To with it)
 * and the transport (SMTP_URL, else .eml files under DATA_DIR/mail).
 */
export function createMailModule(deps: MailModuleDeps) {
  const { db, config, audit, jobs, clock } = deps;
  const log = deps.log.child({ module: 'mail' });
  const repository = createMailRepository();
  const transport = createMailTransport({ smtpUrl: config.mail.smtpUrl, dataDir: config.dataDir }, log);
  const replyAddress = createReplyAddressCodec(config.jwtSecret, config.mail.replyTo);
  const service = createMailService({ db, mail: repository, audit, jobs });
  const definitions = createMailJobs({
    db,
    jobs,
    mail: repository,
    tickets: createTicketsRepository(),
    comments: createCommentsRepository(),
    users: createUsersRepository(),
    transport,
    replyAddress,
    settings: { from: config.mail.from, publicAppUrl: config.mail.publicAppUrl },
    clock,
  });
  return { repository, transport, replyAddress, service, definitions, close: () => transport.close() };
}

export type MailModule = ReturnType<typeof createMailModule>;
