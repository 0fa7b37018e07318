-- portaudit store, schema 2: how busy listeners are, and views written for people.
-- The views show times as ISO 8601 UTC text with milliseconds ('2026-11-26T10:05:00.123Z'),
-- which sorts like time: filter them with text comparisons. The milliseconds are printed
-- from the integer, not through strftime's %f, which can be 1 ms off after float division.
-- They use plain SQL only, so they work in the sqlite3 shell as in `portaudit sql`.

-- How busy a TCP listener was. A row is written only when a value differs from the
-- listener's previous row (no row means 0 and 0), so an unchanged machine adds none. A
-- value holds from its snapshot on, at every snapshot that saw the listener, until the
-- listener's next row.
CREATE TABLE listener_usage (
    listener_id   INTEGER NOT NULL REFERENCES listener(id),
    snapshot_id   INTEGER NOT NULL REFERENCES snapshot(id),  -- first snapshot that saw these values
    connections   INTEGER NOT NULL,   -- established TCP connections on the listener's address and port
    accept_queue  INTEGER NOT NULL,   -- connections waiting to be accepted, summed over its sockets
    PRIMARY KEY (listener_id, snapshot_id)
) WITHOUT ROWID;

-- One row per snapshot.
CREATE VIEW snapshots AS
SELECT s.id AS snapshot_id,
       h.hostname,
       (strftime('%Y-%m-%dT%H:%M:%S.', s.started_at / 1000, 'unixepoch') || printf('%03dZ', s.started_at % 1000)) AS started,
       s.duration_ms, s.as_root, s.source, s.listeners, s.sockets, s.unattributed,
       s.opened, s.closed, s.changed, s.errors
FROM snapshot s JOIN host h ON h.id = s.host_id;

-- One row per holder of each listener interval (one per socket with no readable holder).
-- last_seen is the host's latest snapshot while the interval is still listening.
CREATE VIEW listener_history AS
SELECT i.id AS interval_id,
       h.hostname,
       l.protocol, l.address, l.port, l.interface,
       (strftime('%Y-%m-%dT%H:%M:%S.', f.started_at / 1000, 'unixepoch') || printf('%03dZ', f.started_at % 1000)) AS first_seen,
       (SELECT strftime('%Y-%m-%dT%H:%M:%S.', t / 1000, 'unixepoch') || printf('%03dZ', t % 1000)
        FROM (SELECT coalesce(la.started_at,
              (SELECT s.started_at FROM snapshot s WHERE s.host_id = n.host_id ORDER BY s.id DESC LIMIT 1)) AS t)) AS last_seen,
       (strftime('%Y-%m-%dT%H:%M:%S.', g.started_at / 1000, 'unixepoch') || printf('%03dZ', g.started_at % 1000)) AS gone_by,
       i.last_snapshot_id IS NULL AS listening,
       i.socket_count AS sockets,
       hd.inode,
       p.pid,
       p.name AS process,
       p.user,
       p.cmdline,
       p.exe,
       hd.fd,
       hd.unattributed_reason AS unattributed
FROM listener_interval i
JOIN listener l ON l.id = i.listener_id
JOIN netns n ON n.id = l.netns_id
JOIN host h ON h.id = n.host_id
JOIN snapshot f ON f.id = i.first_snapshot_id
LEFT JOIN snapshot la ON la.id = i.last_snapshot_id
LEFT JOIN snapshot g ON g.id = i.ended_snapshot_id
JOIN holding hd ON hd.interval_id = i.id
LEFT JOIN process p ON p.id = hd.process_id;

-- What listens at each host's latest snapshot, one row per holder.
CREATE VIEW current_listeners AS
SELECT hostname, protocol, address, port, interface, first_seen AS since, pid, process, user, cmdline,
       inode, fd, unattributed
FROM listener_history
WHERE listening;

-- Every event in order: a listener 'opened', 'closed', 'holder_changed' (other processes
-- hold it) or 'sockets_changed' (same processes, other sockets or descriptors). It
-- happened after happened_after (the snapshot before, which did not see it; NULL at a
-- host's first snapshot) and by happened_by (the snapshot that saw it).
-- holders_* list 'name[pid]' (or '?(reason)' for a socket with no readable holder), comma-separated.
CREATE VIEW port_events AS
WITH interval_state AS (
    SELECT i.id, i.listener_id, i.first_snapshot_id, i.ended_snapshot_id, n.host_id,
           (SELECT group_concat(holder, ', ') FROM (
                SELECT DISTINCT coalesce(p.name || '[' || p.pid || ']', '?(' || hd.unattributed_reason || ')') AS holder
                FROM holding hd LEFT JOIN process p ON p.id = hd.process_id
                WHERE hd.interval_id = i.id ORDER BY 1)) AS holders,
           (SELECT group_concat(process_id) FROM (
                SELECT DISTINCT hd.process_id FROM holding hd
                WHERE hd.interval_id = i.id AND hd.process_id IS NOT NULL ORDER BY 1)) AS holder_set
    FROM listener_interval i
    JOIN listener l ON l.id = i.listener_id
    JOIN netns n ON n.id = l.netns_id
),
event AS (
    SELECT cur.listener_id, cur.host_id, cur.first_snapshot_id AS snapshot_id,
           CASE WHEN prev.id IS NULL THEN 'opened'
                WHEN prev.holder_set IS cur.holder_set THEN 'sockets_changed'
                ELSE 'holder_changed' END AS event,
           prev.holders AS holders_before, cur.holders AS holders_after
    FROM interval_state cur
    LEFT JOIN interval_state prev ON prev.listener_id = cur.listener_id AND prev.ended_snapshot_id = cur.first_snapshot_id
    UNION ALL
    SELECT prev.listener_id, prev.host_id, prev.ended_snapshot_id, 'closed', prev.holders, NULL
    FROM interval_state prev
    WHERE prev.ended_snapshot_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM listener_interval nxt
                      WHERE nxt.listener_id = prev.listener_id AND nxt.first_snapshot_id = prev.ended_snapshot_id)
)
SELECT e.event,
       (strftime('%Y-%m-%dT%H:%M:%S.', b.started_at / 1000, 'unixepoch') || printf('%03dZ', b.started_at % 1000)) AS happened_after,
       (strftime('%Y-%m-%dT%H:%M:%S.', s.started_at / 1000, 'unixepoch') || printf('%03dZ', s.started_at % 1000)) AS happened_by,
       h.hostname, l.protocol, l.address, l.port, l.interface,
       e.holders_before, e.holders_after,
       e.snapshot_id
FROM event e
JOIN snapshot s ON s.id = e.snapshot_id
JOIN listener l ON l.id = e.listener_id
JOIN host h ON h.id = e.host_id
LEFT JOIN snapshot b ON b.id = (SELECT max(p.id) FROM snapshot p WHERE p.host_id = e.host_id AND p.id < e.snapshot_id);

-- How busy each TCP listener was: its values from each change on.
CREATE VIEW listener_usage_history AS
SELECT l.protocol, l.address, l.port, l.interface,
       (strftime('%Y-%m-%dT%H:%M:%S.', s.started_at / 1000, 'unixepoch') || printf('%03dZ', s.started_at % 1000)) AS since,
       u.connections, u.accept_queue
FROM listener_usage u
JOIN listener l ON l.id = u.listener_id
JOIN snapshot s ON s.id = u.snapshot_id;
