-- Live fan-out: every transaction that writes change events notifies the 'change_events' channel with its
-- transaction id (PostgreSQL folds identical notifications of one transaction into one). Notifications are
-- delivered at commit, so a listener never hears of a change that rolled back. A statement-level trigger
-- keeps it inside the writer's INSERT: no extra round trip.
CREATE FUNCTION change_events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('change_events', pg_current_xact_id()::text);
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER change_events_notify
AFTER INSERT ON change_events
FOR EACH STATEMENT EXECUTE FUNCTION change_events_notify();
