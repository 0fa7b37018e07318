-- portaudit store, schema 3: settings every run honours, and the record of prunes.

-- Store-wide settings, so that a run started by cron (which passes no options) behaves as
-- the administrator decided. name 'cmdline': 'full', 'redact' or 'none'.
CREATE TABLE setting (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- One row per `portaudit prune`: snapshots before cut_before were removed, except those
-- still needed to date listeners that outlived the cut. Coverage before the latest cut
-- reads as "pruned", not as a gap.
CREATE TABLE prune (
    id                 INTEGER PRIMARY KEY,
    pruned_at          INTEGER NOT NULL,    -- ms since epoch, UTC
    cut_before         INTEGER NOT NULL,    -- ms since epoch, UTC
    snapshots_removed  INTEGER NOT NULL,
    intervals_removed  INTEGER NOT NULL,
    processes_removed  INTEGER NOT NULL
);
