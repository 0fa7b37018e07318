-- portaudit store, schema 6: indexes the history questions need on a store of a year.
-- `changes --since` starts from the snapshots of its window and needs the intervals that
-- begin or end at each of them; `process NAME` matches the executable's file name as well as
-- the kernel's name, and `process /path` the executable path. Nothing is added on snapshot:
-- an unchanged snapshot writes only its row, and every index there would grow each one.

-- Intervals that began at a snapshot (opened or changed there), by listener.
CREATE INDEX interval_by_first_snapshot ON listener_interval (first_snapshot_id, listener_id);

-- Intervals that ended at a snapshot (closed or changed there), by listener. Open intervals
-- have no end and no entry.
CREATE INDEX interval_by_ended_snapshot ON listener_interval (ended_snapshot_id, listener_id)
    WHERE ended_snapshot_id IS NOT NULL;

-- A process by executable path, and by the file name of that path ('/usr/sbin/nginx' ->
-- 'nginx'): rtrim strips the trailing characters that are not '/', leaving the directory,
-- which replace then removes. A query must spell the expression the same way to use it.
CREATE INDEX process_by_exe ON process (exe);
CREATE INDEX process_by_exe_name ON process (replace(exe, rtrim(exe, replace(exe, '/', '')), ''));
