-- Live fan-out is announced by the writing process after the change, outside its transaction
-- (src/modules/changes/change-announcer.ts): a NOTIFY inside the transaction serialized the commits of
-- every writer on PostgreSQL's notification lock, held through the commit's WAL flush.
DROP TRIGGER IF EXISTS change_events_notify ON change_events;
--> statement-breakpoint
DROP FUNCTION IF EXISTS change_events_notify();
