-- Which team owns which service, for the dashboards' team variable and
-- their per-team panels. Portable SQL: runs on ClickHouse 18.16 (Debian)
-- and current releases.
--
-- Nothing in the evidence names a team, so the mapping is kept here, filled
-- by whoever owns it from a CSV file (docs/dashboards.md):
--
--   clickhouse-client --database evidence \
--     --query 'INSERT INTO service_teams (service, team) FORMAT CSV' < teams.csv
--
-- A service with no row here belongs to the owner of its repository (the
-- second path segment: github.com/acme/payments -> acme), so the dashboards
-- show every deployment under some team even before the mapping is filled.
--
-- Re-inserting a service with another team moves it: the table keeps the row
-- with the latest updated_at per service once merged, so read it with FINAL.
-- updated_at defaults to the time of the INSERT.

CREATE TABLE IF NOT EXISTS service_teams (
    service     String   COMMENT 'the service, as deployments.service names it',
    team        String   COMMENT 'the team that owns it',
    updated_at  DateTime DEFAULT now() COMMENT 'when the row was written; the latest row of a service wins (FINAL)'
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY service;
