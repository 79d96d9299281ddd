-- Runs once, when the PostgreSQL volume is created (docker-entrypoint-initdb.d), as the owner role
-- POSTGRES_USER (helpdesk). Creates the role the API runs as: it may log in and nothing else yet; the
-- migrations (run as the owner, DATABASE_MIGRATION_URL) grant it rows of every table but only INSERT and
-- SELECT on the append-only audit trail. Change both passwords for anything beyond a local trial.
CREATE ROLE helpdesk_app LOGIN PASSWORD 'helpdesk_app';
GRANT CONNECT ON DATABASE helpdesk TO helpdesk_app;
