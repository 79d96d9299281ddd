-- Reports read covering indexes only (index-only scans): the 30-day overview at a million tickets must not read
-- the wide tickets table. The solved index replaces tickets_solved_idx (same key and predicate, more columns).
-- tickets_report_sla_scope_idx answers "is this breach-marked ticket live, governed, in scope, decided when?" by
-- id without a heap fetch (SLA attainment probes it once per breach marked in the period).
DROP INDEX IF EXISTS "tickets_solved_idx";--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "tickets_report_created_idx" ON "tickets" USING btree ("created_at")
  INCLUDE ("first_response_at", "team_id", "assignee_id") WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "tickets_report_solved_idx" ON "tickets" USING btree ("solved_at")
  INCLUDE ("created_at", "team_id", "assignee_id", "sla_policy_id", "id")
  WHERE deleted_at IS NULL AND solved_at IS NOT NULL;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "tickets_report_backlog_idx" ON "tickets" USING btree ("status", "priority", "assignee_id")
  INCLUDE ("team_id") WHERE deleted_at IS NULL AND status IN ('new', 'open', 'pending', 'on_hold');--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "tickets_report_first_response_idx" ON "tickets" USING btree ("first_response_at")
  INCLUDE ("id", "team_id", "assignee_id")
  WHERE deleted_at IS NULL AND first_response_at IS NOT NULL AND sla_first_response_due_at IS NOT NULL;
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "tickets_report_sla_scope_idx" ON "tickets" USING btree ("id")
  INCLUDE ("sla_policy_id", "sla_first_response_due_at", "first_response_at", "solved_at", "team_id", "assignee_id")
  WHERE deleted_at IS NULL AND sla_policy_id IS NOT NULL;
