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
ALTER TABLE "job_records" ADD CONSTRAINT "job_records_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "job_records_finished_idx" ON "job_records" USING btree ("finished_at") WHERE finished_at IS NOT NULL;--> statement-breakpoint
CREATE INDEX "job_records_failed_idx" ON "job_records" USING btree ("id") WHERE state = 'failed';