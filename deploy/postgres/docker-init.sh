#!/bin/sh
# Runs deploy/postgres/init.sql once, when the postgres container starts on an empty data directory
# (mounted as /docker-entrypoint-initdb.d/10-crisis.sh by deploy/compose/docker-compose.yml). The crisis
# role's password comes from POSTGRES_CRISIS_PASSWORD, so it never lands in a file.
set -eu
: "${POSTGRES_CRISIS_PASSWORD:?set POSTGRES_CRISIS_PASSWORD}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
     -v crisis_password="$POSTGRES_CRISIS_PASSWORD" -f /crisis/init.sql
