-- portaudit store, migration 10: the three views migration 0007 computed its summaries with
-- leave the store. SQLite parses every view of the schema whenever a connection first
-- prepares a statement, so every run paid for them: 0.85M of the 4.4M instructions of
-- opening the store, 8 % of a 50-socket snapshot. Nobody reads them but a prune, which
-- rebuilds listener_span and listener_holder_name with the same queries, now its own
-- (Prune.swift, SummariesFromHistory); coverage_gap_from_history served migration 0007 alone.
DROP VIEW listener_span_from_history;
DROP VIEW listener_holder_name_from_history;
DROP VIEW coverage_gap_from_history;
