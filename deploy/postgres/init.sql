-- One role and one database for the crisis services.
--
-- The stores of the dispatcher, notifier and projections share this database. Each eventsourcing application
-- creates its own tables on first start, named after its class: dispatcher_*, notifier_*, readmodels_* and
-- followupdesk_* (<name>_events, <name>_tracking, some <name>_snapshots), plus the projections' read-model
-- and audit tables (projections_rm_*, projections_audit_log). So the role needs CREATE on the schema.
-- The intake gateway (NATS key-value buckets) and the SMS sandbox do not use PostgreSQL.
--
-- Run once, as a superuser, with the password passed in so it never lands in this file or in shell history:
--
--   read -rs POSTGRES_CRISIS_PASSWORD
--   psql -v ON_ERROR_STOP=1 -h DB_HOST -U postgres \
--        -v crisis_password="$POSTGRES_CRISIS_PASSWORD" -f deploy/postgres/init.sql
--
-- Then give the services:
--   CRISIS_DATABASE_URL=postgresql://crisis:PASSWORD@DB_HOST:5432/crisis
-- (percent-encode characters such as @ : / in the password).
--
-- The names "crisis" (role) and "crisis" (database) are placeholders; change both here and in the URL.

CREATE ROLE crisis LOGIN PASSWORD :'crisis_password';

CREATE DATABASE crisis OWNER crisis ENCODING 'UTF8' TEMPLATE template0;

-- Nobody else connects to it.
REVOKE ALL ON DATABASE crisis FROM PUBLIC;

\connect crisis

-- The services create their tables in the public schema. On PostgreSQL 15 and later the database owner
-- may already do that; on older versions this also stops other roles from creating objects here.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO crisis;

-- Optional: a role for running the test suite against this server (make test with
-- CRISIS_TEST_POSTGRES_URL=postgresql://crisis_test:PASSWORD@DB_HOST:5432/postgres). The tests create and
-- drop a fresh database per run, so this role needs CREATEDB. Never point tests at production.
-- CREATE ROLE crisis_test LOGIN CREATEDB PASSWORD :'crisis_test_password';
