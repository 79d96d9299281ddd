CREATE TABLE "ticket_sla" (
	"ticket_id" integer PRIMARY KEY NOT NULL,
	"first_response_breached_at" timestamp (3) with time zone,
	"resolution_breached_at" timestamp (3) with time zone,
	"breach_check_at" timestamp (3) with time zone
);
--> statement-breakpoint
DROP INDEX "tickets_solved_idx";--> statement-breakpoint
DROP INDEX "tickets_sla_breach_check_idx";--> statement-breakpoint
DROP INDEX "tickets_sla_breached_updated_idx";--> statement-breakpoint
ALTER TABLE "ticket_sla" ADD CONSTRAINT "ticket_sla_ticket_id_tickets_id_fk" FOREIGN KEY ("ticket_id") REFERENCES "public"."tickets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- The marks and the breach queue move off tickets: every ticket with something marked or watched keeps it.
INSERT INTO "ticket_sla" ("ticket_id", "first_response_breached_at", "resolution_breached_at", "breach_check_at")
SELECT "id", "sla_first_response_breached_at", "sla_resolution_breached_at", "sla_breach_check_at"
  FROM "tickets"
 WHERE "sla_first_response_breached_at" IS NOT NULL OR "sla_resolution_breached_at" IS NOT NULL
    OR "sla_breach_check_at" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "ticket_sla_breach_check_idx" ON "ticket_sla" USING btree ("breach_check_at") WHERE breach_check_at IS NOT NULL;--> statement-breakpoint
CREATE INDEX "ticket_sla_fr_breached_idx" ON "ticket_sla" USING btree ("first_response_breached_at") WHERE first_response_breached_at IS NOT NULL;--> statement-breakpoint
CREATE INDEX "ticket_sla_res_breached_idx" ON "ticket_sla" USING btree ("resolution_breached_at") WHERE resolution_breached_at IS NOT NULL;--> statement-breakpoint
ALTER TABLE "tickets" DROP COLUMN "sla_first_response_breached_at";--> statement-breakpoint
ALTER TABLE "tickets" DROP COLUMN "sla_resolution_breached_at";--> statement-breakpoint
ALTER TABLE "tickets" DROP COLUMN "sla_breach_check_at";