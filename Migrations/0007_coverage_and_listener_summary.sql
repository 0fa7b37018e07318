-- portaudit store, migration 7: what history, changes and ports need, kept as history is
-- written, so that on a store of a year they read a few rows instead of every snapshot.
-- An unchanged snapshot writes nothing here, unless it ends a pause (a gap); the listener
-- summaries are written by triggers when an interval opens or closes.

-- A pause in observation: no snapshot for more than 3 times the usual spacing of snapshots
-- (the machine was off, or the schedule broken). Whether anything listened then is unknown.
-- The collector writes one when the snapshot that ends the pause is stored, judged against
-- the median spacing of the 32 snapshots before it (since the latest prune); `watch`, which
-- checks continuously between the snapshots it writes, writes one only when its own checks
-- paused (a suspended machine). A gap a later snapshot falls inside (the clock had run
-- ahead) is deleted. A prune deletes the gaps before its cut and keeps the others.
CREATE TABLE coverage_gap (
    host_id   INTEGER NOT NULL REFERENCES host(id),
    from_at   INTEGER NOT NULL,   -- started_at of the last snapshot before the pause, ms since epoch UTC
    to_at     INTEGER NOT NULL,   -- started_at of the first snapshot after it
    usual_ms  INTEGER NOT NULL,   -- the usual spacing (median) it was judged against
    PRIMARY KEY (host_id, from_at)
) WITHOUT ROWID;

-- Per listener, the span of its history (what `ports` shows), so that `ports` reads one row
-- per listener instead of all its intervals. Kept by the triggers below; the view
-- listener_span_from_history computes the same from the history itself (after a prune, the
-- table is rebuilt from it). The triggers follow how the collector writes: an interval is
-- inserted open, then closed by an UPDATE; rows loaded otherwise (closed when inserted) must
-- be followed by a rebuild from the views, as prune does.
CREATE TABLE listener_span (
    listener_id        INTEGER PRIMARY KEY REFERENCES listener(id),
    first_snapshot_id  INTEGER NOT NULL REFERENCES snapshot(id),  -- the first snapshot that saw it
    first_at           INTEGER NOT NULL,   -- that snapshot's started_at
    appeared_after     INTEGER,            -- started_at of the host's snapshot before it; NULL when none
    last_closed_at     INTEGER,            -- last seen by an interval that has ended; NULL when none has
    holder_count       INTEGER NOT NULL    -- distinct processes that ever held it
);

-- Per listener and holder name, how long processes of that name held it in intervals that
-- have ended: for each (interval, process) max(1, last seen - first seen) ms, summed; and when
-- last. Open intervals are added at query time. `ports` names the main holder from it.
CREATE TABLE listener_holder_name (
    listener_id  INTEGER NOT NULL REFERENCES listener(id),
    name         TEXT NOT NULL,        -- process.name
    held_ms      INTEGER NOT NULL,
    latest_at    INTEGER NOT NULL,     -- last seen held by that name
    PRIMARY KEY (listener_id, name)
) WITHOUT ROWID;

CREATE VIEW listener_span_from_history AS
SELECT l.id AS listener_id, f.id AS first_snapshot_id, f.started_at AS first_at,
       (SELECT b.started_at FROM snapshot b WHERE +b.host_id = f.host_id AND b.id < f.id ORDER BY b.id DESC LIMIT 1) AS appeared_after,
       (SELECT max(s.started_at) FROM listener_interval i JOIN snapshot s ON s.id = i.last_snapshot_id
        WHERE i.listener_id = l.id) AS last_closed_at,
       (SELECT count(DISTINCT h.process_id) FROM listener_interval i JOIN holding h ON h.interval_id = i.id
        WHERE i.listener_id = l.id) AS holder_count
FROM listener l
JOIN snapshot f ON f.id = (SELECT s.id FROM listener_interval i JOIN snapshot s ON s.id = i.first_snapshot_id
                           WHERE i.listener_id = l.id ORDER BY s.started_at, s.id LIMIT 1);

CREATE VIEW listener_holder_name_from_history AS
WITH held AS (
    SELECT DISTINCT i.listener_id, i.id, h.process_id, f.started_at AS first_at, la.started_at AS last_at
    FROM listener_interval i
    JOIN snapshot f ON f.id = i.first_snapshot_id
    JOIN snapshot la ON la.id = i.last_snapshot_id
    JOIN holding h ON h.interval_id = i.id AND h.process_id IS NOT NULL)
SELECT held.listener_id, p.name, sum(max(1, held.last_at - held.first_at)) AS held_ms, max(held.last_at) AS latest_at
FROM held JOIN process p ON p.id = held.process_id
GROUP BY held.listener_id, p.name;

INSERT INTO listener_span SELECT * FROM listener_span_from_history;
INSERT INTO listener_holder_name SELECT * FROM listener_holder_name_from_history;

-- The gaps of a history written before this migration, by the rule `status` applied to it
-- then: snapshots less than a second apart are one run; a pause between runs is a gap when
-- longer than 3 times the median spacing of the host's runs since the latest prune. This
-- migration fills coverage_gap from it; from then on the collector writes the gaps.
CREATE VIEW coverage_gap_from_history AS
WITH marked AS (
    SELECT host_id, started_at,
           CASE WHEN started_at - lag(started_at) OVER (PARTITION BY host_id ORDER BY started_at) < 1000 THEN 0 ELSE 1 END AS starts_run
    FROM snapshot
    WHERE started_at >= coalesce((SELECT max(cut_before) FROM prune), 0)),
numbered AS (
    SELECT host_id, started_at, sum(starts_run) OVER (PARTITION BY host_id ORDER BY started_at ROWS UNBOUNDED PRECEDING) AS run
    FROM marked),
runs AS (SELECT host_id, run, min(started_at) AS first_at, max(started_at) AS last_at FROM numbered GROUP BY host_id, run),
pauses AS (
    SELECT host_id, last_at AS from_at, lead(first_at) OVER w AS to_at, lead(first_at) OVER w - first_at AS spacing
    FROM runs WINDOW w AS (PARTITION BY host_id ORDER BY run)),
ranked AS (
    SELECT host_id, spacing, row_number() OVER (PARTITION BY host_id ORDER BY spacing) AS k, count(*) OVER (PARTITION BY host_id) AS n
    FROM pauses WHERE spacing IS NOT NULL),
usual AS (SELECT host_id, avg(spacing) AS ms FROM ranked WHERE k IN ((n + 1) / 2, (n + 2) / 2) GROUP BY host_id)
SELECT p.host_id, p.from_at, p.to_at, CAST(round(u.ms) AS INTEGER) AS usual_ms
FROM pauses p JOIN usual u ON u.host_id = p.host_id
WHERE p.to_at IS NOT NULL AND p.to_at - p.from_at > 3 * u.ms;

INSERT INTO coverage_gap SELECT * FROM coverage_gap_from_history;

-- An interval opening: its listener's span begins (or begins earlier, if a clock went back).
CREATE TRIGGER listener_span_on_open AFTER INSERT ON listener_interval
BEGIN
    INSERT INTO listener_span (listener_id, first_snapshot_id, first_at, appeared_after, last_closed_at, holder_count)
    SELECT NEW.listener_id, f.id, f.started_at,
           (SELECT b.started_at FROM snapshot b WHERE +b.host_id = f.host_id AND b.id < f.id ORDER BY b.id DESC LIMIT 1),
           NULL, 0
    FROM snapshot f WHERE f.id = NEW.first_snapshot_id
    ON CONFLICT (listener_id) DO UPDATE
        SET first_snapshot_id = excluded.first_snapshot_id, first_at = excluded.first_at, appeared_after = excluded.appeared_after
        WHERE excluded.first_at < listener_span.first_at;
END;

-- A holder recorded: counted once per listener, the first time that process holds it.
CREATE TRIGGER listener_span_on_holder AFTER INSERT ON holding WHEN NEW.process_id IS NOT NULL
BEGIN
    UPDATE listener_span SET holder_count = holder_count + 1
    WHERE listener_id = (SELECT listener_id FROM listener_interval WHERE id = NEW.interval_id)
      AND NOT EXISTS (
          SELECT 1 FROM holding h JOIN listener_interval i ON i.id = h.interval_id
          WHERE h.process_id = NEW.process_id AND h.rowid <> NEW.rowid
            AND i.listener_id = (SELECT listener_id FROM listener_interval WHERE id = NEW.interval_id));
END;

-- An interval ending: its last-seen time and its holders' time join the summaries.
CREATE TRIGGER listener_span_on_close AFTER UPDATE OF last_snapshot_id ON listener_interval
WHEN OLD.last_snapshot_id IS NULL AND NEW.last_snapshot_id IS NOT NULL
BEGIN
    UPDATE listener_span
    SET last_closed_at = max(coalesce(last_closed_at, 0), (SELECT started_at FROM snapshot WHERE id = NEW.last_snapshot_id))
    WHERE listener_id = NEW.listener_id;
    INSERT INTO listener_holder_name (listener_id, name, held_ms, latest_at)
    SELECT NEW.listener_id, p.name, count(DISTINCT p.id) * max(1, la.started_at - f.started_at), la.started_at
    FROM holding h
    JOIN process p ON p.id = h.process_id
    JOIN snapshot f ON f.id = NEW.first_snapshot_id
    JOIN snapshot la ON la.id = NEW.last_snapshot_id
    WHERE h.interval_id = NEW.id
    GROUP BY p.name
    ON CONFLICT (listener_id, name) DO UPDATE
        SET held_ms = held_ms + excluded.held_ms, latest_at = max(latest_at, excluded.latest_at);
END;
