-- audit_events: keyed by seq (its insertion order, what the API pages by). The uuid id stays the public
-- name, unique by construction (gen_random_uuid) but never looked up: no B-tree of random keys to keep.
ALTER TABLE "audit_events" DROP CONSTRAINT "audit_events_pkey";--> statement-breakpoint
DROP INDEX "audit_events_seq_idx";--> statement-breakpoint
ALTER TABLE "audit_events" ADD CONSTRAINT "audit_events_pkey" PRIMARY KEY ("seq");--> statement-breakpoint
-- The system's audit rows (actor_id NULL: SLA breach passes, jobs) leave the actor index: it is only ever
-- searched for one person's actions.
DROP INDEX "audit_events_actor_idx";--> statement-breakpoint
CREATE INDEX "audit_events_actor_idx" ON "audit_events" USING btree ("actor_id","seq") WHERE actor_id IS NOT NULL;--> statement-breakpoint
-- The change feed's entity is written whole and read whole, never queried into: kept as validated JSON
-- text, not converted to and from jsonb's binary form on every write and read.
ALTER TABLE "change_events" ALTER COLUMN "data" SET DATA TYPE json USING "data"::json;
