-- Which `portaudit watch` run wrote a snapshot; NULL for `portaudit snapshot` (cron, a
-- timer, by hand). The usual interval that gaps are judged by is that of the schedule: a
-- watch's snapshots, written at changes seconds apart, say nothing of it.
ALTER TABLE snapshot ADD COLUMN watch_run_id INTEGER REFERENCES watch_run(id);

-- Earlier snapshots are attributed by time: those inside a run's span. A cron snapshot taken
-- while a watch ran is counted as the watch's; that only makes the judgement more cautious.
UPDATE snapshot SET watch_run_id = (
    SELECT w.id FROM watch_run w
    WHERE w.host_id = snapshot.host_id AND w.started_at <= snapshot.started_at
      AND snapshot.started_at <= coalesce(w.stopped_at, w.updated_at)
    ORDER BY w.started_at DESC LIMIT 1)
WHERE EXISTS (
    SELECT 1 FROM watch_run w
    WHERE w.host_id = snapshot.host_id AND w.started_at <= snapshot.started_at
      AND snapshot.started_at <= coalesce(w.stopped_at, w.updated_at));
