-- portaudit store, migration 10: the three views migration 0007 computed its summaries with
-- leave the store. SQLite parses every view of the schema whenever a connection first
-- prepares a statement, so every run paid for them: an unchanged 50-socket snapshot takes
-- 10.01M instructions without them, 10.60M with. Nobody reads them but a prune, which
-- rebuilds listener_span and listener_holder_name with the same queries, now its own
-- (Prune.swift, SummariesFromHistory); coverage_gap_from_history served migration 0007 alone.
-- IF EXISTS: a view someone dropped by hand must not stop the store from opening.
DROP VIEW IF EXISTS listener_span_from_history;
DROP VIEW IF EXISTS listener_holder_name_from_history;
DROP VIEW IF EXISTS coverage_gap_from_history;
