-- A ticket's timeline (GET /tickets/{id}/events): every ticket-related event carries metadata.ticketId.
CREATE INDEX IF NOT EXISTS "audit_events_ticket_idx" ON "audit_events" USING btree ((metadata ->> 'ticketId'), "seq");
