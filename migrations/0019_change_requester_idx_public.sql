-- A requester's feed never shows a staff-only event (internal notes, drafts, SLA breaches): those leave
-- its index, so the thousands an SLA breach pass writes add nothing to it.
DROP INDEX "change_events_requester_idx";--> statement-breakpoint
CREATE INDEX "change_events_requester_idx" ON "change_events" USING btree ("requester_id","xid","id") WHERE NOT staff_only;