-- The snapshots a `portaudit watch` run wrote; those `portaudit snapshot` took (cron, a
-- timer, by hand) have no row, so that they cost the store nothing more. The usual interval
-- that gaps are judged by is that of the schedule: a watch's snapshots, written at changes
-- seconds apart, say nothing of it.
CREATE TABLE watch_snapshot (
    snapshot_id   INTEGER PRIMARY KEY REFERENCES snapshot(id),
    watch_run_id  INTEGER NOT NULL REFERENCES watch_run(id)
);

-- Earlier snapshots are attributed by time: those inside a run's span. A cron snapshot taken
-- while a watch ran is counted as the watch's; that only makes the judgement more cautious.
INSERT INTO watch_snapshot (snapshot_id, watch_run_id)
SELECT s.id, (SELECT w.id FROM watch_run w
              WHERE w.host_id = s.host_id AND w.started_at <= s.started_at
                AND s.started_at <= coalesce(w.stopped_at, w.updated_at)
              ORDER BY w.started_at DESC LIMIT 1) AS run
FROM snapshot s
WHERE run IS NOT NULL;
