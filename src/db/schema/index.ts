// Every table of the application; drizzle-kit reads this file (drizzle.config.ts).
export * from './attachments.js';
export * from './audit.js';
export * from './changes.js';
export * from './drafts.js';
export * from './inbound.js';
export * from './jobs.js';
export * from './mail.js';
export * from './sessions.js';
export * from './sla.js';
export * from './storage.js';
export * from './tickets.js';
export * from './users.js';
export * from './webhooks.js';
