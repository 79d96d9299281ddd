DROP INDEX "audit_events_occurred_idx";--> statement-breakpoint
DROP INDEX "change_events_occurred_idx";--> statement-breakpoint
CREATE INDEX "audit_events_occurred_brin" ON "audit_events" USING brin ("occurred_at") WITH (autosummarize=true);