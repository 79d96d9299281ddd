CREATE TABLE "job_records" (
	"id" bigint PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"created_by" uuid,
	"state" text DEFAULT 'queued' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"progress_done" integer DEFAULT 0 NOT NULL,
	"progress_total" integer DEFAULT 0 NOT NULL,
	"result" jsonb,
	"error" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp (3) with time zone,
	CONSTRAINT "job_records_state" CHECK ("job_records"."state" IN ('queued', 'running', 'succeeded', 'failed')),
	CONSTRAINT "job_records_finished" CHECK (("job_records"."state" IN ('succeeded', 'failed')) = ("job_records"."finished_at" IS NOT NULL))
);
--> statement-breakpoint
CREATE TABLE "sla_policies" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"position" integer NOT NULL,
	"applies_to_team_id" uuid,
	"applies_to_type" "ticket_type",
	"targets" jsonb NOT NULL,
	"business_hours" jsonb,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sla_policies_name_len" CHECK (char_length("sla_policies"."name") BETWEEN 1 AND 100),
	CONSTRAINT "sla_policies_position_nonneg" CHECK ("sla_policies"."position" >= 0)
);
--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "sla_policy_id" uuid;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "sla_first_response_due_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "sla_resolution_due_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "sla_first_response_breached_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "sla_resolution_breached_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "sla_resolution_started_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "sla_resolution_consumed_ms" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "sla_next_due_at" timestamp (3) with time zone DEFAULT 'infinity' NOT NULL;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "sla_breach_check_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "job_records" ADD CONSTRAINT "job_records_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sla_policies" ADD CONSTRAINT "sla_policies_applies_to_team_id_teams_id_fk" FOREIGN KEY ("applies_to_team_id") REFERENCES "public"."teams"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "job_records_finished_idx" ON "job_records" USING btree ("finished_at") WHERE finished_at IS NOT NULL;--> statement-breakpoint
CREATE INDEX "job_records_failed_idx" ON "job_records" USING btree ("id") WHERE state = 'failed';--> statement-breakpoint
CREATE INDEX "sla_policies_position_idx" ON "sla_policies" USING btree ("position","created_at","id");--> statement-breakpoint
CREATE INDEX "tickets_sla_due_idx" ON "tickets" USING btree ("sla_next_due_at","id") WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX "tickets_sla_breach_check_idx" ON "tickets" USING btree ("sla_breach_check_at") WHERE sla_breach_check_at IS NOT NULL AND deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX "tickets_sla_breached_updated_idx" ON "tickets" USING btree ("updated_at","id") WHERE deleted_at IS NULL AND (sla_first_response_breached_at IS NOT NULL OR sla_resolution_breached_at IS NOT NULL);--> statement-breakpoint
ALTER TABLE "tickets" ADD CONSTRAINT "tickets_sla_consumed_nonneg" CHECK ("tickets"."sla_resolution_consumed_ms" >= 0);