// Every table of the application; drizzle-kit reads this file (drizzle.config.ts).
export * from './attachments.js';
export * from './audit.js';
export * from './changes.js';
export * from './drafts.js';
export * from './jobs.js';
export * from './tickets.js';
export * from './users.js';
