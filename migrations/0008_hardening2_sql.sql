-- Separate migration (owner) and runtime roles. Migrations run as the role of DATABASE_MIGRATION_URL,
-- which owns every table; the application runs as the role of DATABASE_URL. Only an owner (or a superuser)
-- can ALTER TABLE ... DISABLE TRIGGER, so a runtime role that is not the owner cannot get around the
-- append-only triggers of audit_events; on top of that it is granted only INSERT and SELECT there.
--
-- helpdesk_grant_runtime_role(role) is called after every migration run (src/db/migrate.ts) with the
-- runtime role's name, so tables added by later migrations are granted too. It is a no-op when the runtime
-- role is the migrating role (one DATABASE_URL, the embedded database): nothing changes for that setup.
CREATE OR REPLACE FUNCTION helpdesk_grant_runtime_role(runtime name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  tbl name;
BEGIN
  IF runtime IS NULL OR runtime = current_user THEN
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = runtime) THEN
    RAISE EXCEPTION 'runtime role "%" does not exist', runtime;
  END IF;
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = runtime) OR pg_has_role(runtime, current_user, 'USAGE') THEN
    RAISE EXCEPTION 'runtime role "%" is a superuser or has the privileges of the migration role "%": it could change the audit trail; give DATABASE_URL a role of its own', runtime, current_user;
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', runtime);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', runtime);
  EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO %I', runtime);
  EXECUTE format('REVOKE ALL ON audit_events FROM %I', runtime);
  EXECUTE format('GRANT SELECT, INSERT ON audit_events TO %I', runtime);
  -- The job queue library's schema: its functions insert into and update its own tables.
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'graphile_worker') THEN
    EXECUTE format('GRANT USAGE ON SCHEMA graphile_worker TO %I', runtime);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA graphile_worker TO %I', runtime);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA graphile_worker TO %I', runtime);
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA graphile_worker TO %I', runtime);
    -- Its tables have row-level security on, which only their owner bypasses: let the runtime role see
    -- and write their rows (one permissive policy per table, created once).
    FOR tbl IN
      SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'graphile_worker' AND c.relkind = 'r' AND c.relrowsecurity
    LOOP
      IF NOT EXISTS (
        SELECT 1 FROM pg_policies
        WHERE schemaname = 'graphile_worker' AND tablename = tbl AND policyname = 'runtime_' || runtime
      ) THEN
        EXECUTE format('CREATE POLICY %I ON graphile_worker.%I TO %I USING (true) WITH CHECK (true)',
                       'runtime_' || runtime, tbl, runtime);
      END IF;
    END LOOP;
  END IF;
END;
$$;
--> statement-breakpoint
-- Nobody but the owner changes the audit trail, whatever was granted to PUBLIC before.
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_events FROM PUBLIC;
