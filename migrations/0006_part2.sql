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
CREATE TABLE "change_events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "change_events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL,
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL,
	"type" text NOT NULL,
	"ticket_id" integer,
	"requester_id" uuid,
	"staff_only" boolean DEFAULT false NOT NULL,
	"actor_id" uuid,
	"actor_name" text,
	"actor_role" "user_role",
	"trace_id" text,
	"data" jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "change_feed_horizon" (
	"id" smallint PRIMARY KEY DEFAULT 1 NOT NULL,
	"xid" "xid8" NOT NULL,
	"event_id" bigint NOT NULL,
	"pruned_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "change_feed_horizon_single_row" CHECK ("change_feed_horizon"."id" = 1)
);
--> statement-breakpoint
CREATE TABLE "change_stream_tokens" (
	"token_hash" text PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"access_token_sealed" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "job_records" ADD CONSTRAINT "job_records_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "change_stream_tokens" ADD CONSTRAINT "change_stream_tokens_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "job_records_finished_idx" ON "job_records" USING btree ("finished_at") WHERE finished_at IS NOT NULL;--> statement-breakpoint
CREATE INDEX "job_records_failed_idx" ON "job_records" USING btree ("id") WHERE state = 'failed';--> statement-breakpoint
CREATE INDEX "change_events_position_idx" ON "change_events" USING btree ("xid","id");--> statement-breakpoint
CREATE INDEX "change_events_ticket_idx" ON "change_events" USING btree ("ticket_id","xid","id");--> statement-breakpoint
CREATE INDEX "change_events_requester_idx" ON "change_events" USING btree ("requester_id","xid","id");--> statement-breakpoint
CREATE INDEX "change_events_occurred_idx" ON "change_events" USING btree ("occurred_at");--> statement-breakpoint
CREATE INDEX "change_stream_tokens_expires_idx" ON "change_stream_tokens" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "audit_events_reopened_idx" ON "audit_events" USING btree ("occurred_at") WHERE action = 'ticket.status_changed' AND (changes -> 'status' ->> 0) = 'solved' AND (changes -> 'status' ->> 1) = 'open';--> statement-breakpoint
CREATE INDEX "tickets_solved_idx" ON "tickets" USING btree ("solved_at") WHERE deleted_at IS NULL AND solved_at IS NOT NULL;