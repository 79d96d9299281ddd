-- A ticket's own audit rows (entity = the ticket that metadata.ticketId names) are already in the ticket
-- index (audit_events_ticket_idx): the entity index keeps only the rest, so every audited ticket change
-- (an SLA breach pass writes thousands) pays one random-key index insert less. Lookups by a ticket entity
-- ask for both parts (AuditRepository, isTicketEntity).
DROP INDEX "audit_events_entity_idx";--> statement-breakpoint
-- Rows without a trace id (the system's: breach passes, jobs) are never looked up by it.
DROP INDEX "audit_events_trace_idx";--> statement-breakpoint
CREATE INDEX "audit_events_entity_idx" ON "audit_events" USING btree ("entity_type","entity_id","seq") WHERE (entity_type <> 'ticket' OR (metadata ->> 'ticketId') IS DISTINCT FROM entity_id);--> statement-breakpoint
CREATE INDEX "audit_events_trace_idx" ON "audit_events" USING btree ("trace_id") WHERE trace_id IS NOT NULL;
