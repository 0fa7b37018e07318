-- portaudit store, migration 5: containers of holder processes, and watch mode's own record.
-- Listeners of every network namespace need no schema change: listener is keyed on
-- netns_id and netns already has the inode and the /run/netns name.

-- The container a holder runs in, from its cgroup path; NULL outside containers.
ALTER TABLE process ADD COLUMN container_runtime TEXT;  -- docker, containerd, cri-o, kubernetes, podman, systemd-nspawn, lxc
ALTER TABLE process ADD COLUMN container_id TEXT;       -- the runtime's id or the machine/container name
CREATE INDEX process_by_container ON process (container_id) WHERE container_id IS NOT NULL;

-- One run of `portaudit watch`. Updated in the same transaction as each snapshot it
-- writes (a change or a heartbeat) and when it stops, so its figures cover exactly what
-- the store shows. Checks that found nothing changed write nothing else: the last one's
-- time is last_check_at here, and becomes a snapshot at the next change, heartbeat or stop.
CREATE TABLE watch_run (
    id              INTEGER PRIMARY KEY,
    host_id         INTEGER NOT NULL REFERENCES host(id),
    pid             INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,       -- ms since epoch, UTC
    updated_at      INTEGER NOT NULL,       -- when the figures below were last written
    stopped_at      INTEGER,                -- clean stop (SIGTERM/SIGINT); NULL while running or if killed
    interval_ms     INTEGER NOT NULL,       -- time between checks
    heartbeat_ms    INTEGER NOT NULL,       -- longest time without a snapshot
    checks          INTEGER NOT NULL,       -- collections made
    snapshots       INTEGER NOT NULL,       -- snapshots written (changes, heartbeats, the check before a change, the stop)
    last_check_at   INTEGER,                -- the last check, written or not
    cpu_user_ms     INTEGER NOT NULL,       -- CPU time of the watch process since it started (getrusage)
    cpu_system_ms   INTEGER NOT NULL
);
CREATE INDEX watch_run_by_time ON watch_run (host_id, started_at);
