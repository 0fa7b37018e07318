-- portaudit store, schema 1.
-- Times are INTEGER milliseconds since the Unix epoch, UTC. Every "seen" time is the
-- started_at of a snapshot: the store knows only what snapshots saw.

-- A machine whose listeners are recorded. Stores of several hosts can be merged.
CREATE TABLE host (
    id          INTEGER PRIMARY KEY,
    machine_id  TEXT NOT NULL,              -- /etc/machine-id, '' when absent
    hostname    TEXT NOT NULL,
    UNIQUE (machine_id, hostname)
);

-- A network namespace of a host, by the inode of its /proc/<pid>/ns/net link.
CREATE TABLE netns (
    id          INTEGER PRIMARY KEY,
    host_id     INTEGER NOT NULL REFERENCES host(id),
    inode       INTEGER NOT NULL,
    name        TEXT,                       -- from /run/netns, when it has one
    UNIQUE (host_id, inode)
);

-- One run of the collector. Snapshots are the clock of the store.
CREATE TABLE snapshot (
    id            INTEGER PRIMARY KEY,
    host_id       INTEGER NOT NULL REFERENCES host(id),
    netns_id      INTEGER NOT NULL REFERENCES netns(id),  -- the namespace it read
    started_at    INTEGER NOT NULL,         -- ms since epoch, UTC
    duration_ms   INTEGER NOT NULL,         -- collection and storage, wall time
    as_root       INTEGER NOT NULL,         -- 1 when run with euid 0
    source        TEXT NOT NULL,            -- how sockets were enumerated: 'netlink' or 'procfs'
    listeners     INTEGER NOT NULL,         -- distinct listeners (protocol, address, port) seen
    sockets       INTEGER NOT NULL,         -- kernel sockets seen (SO_REUSEPORT makes several per listener)
    unattributed  INTEGER NOT NULL,         -- sockets with no readable holder process
    opened        INTEGER NOT NULL,         -- listeners not seen by the previous snapshot
    closed        INTEGER NOT NULL,         -- listeners of the previous snapshot not seen any more
    changed       INTEGER NOT NULL,         -- listeners still there whose sockets or holders changed
    errors        TEXT                      -- collection errors, one per line; NULL when none
);
CREATE INDEX snapshot_by_time ON snapshot (host_id, started_at);

-- A process that held a listening socket. A pid alone is not an identity: pids are
-- reused, so a process is (host, boot, pid, start time).
CREATE TABLE process (
    id           INTEGER PRIMARY KEY,
    host_id      INTEGER NOT NULL REFERENCES host(id),
    boot_id      TEXT NOT NULL,             -- /proc/sys/kernel/random/boot_id
    pid          INTEGER NOT NULL,
    start_ticks  INTEGER NOT NULL,          -- starttime of /proc/<pid>/stat, clock ticks after boot
    started_at   INTEGER NOT NULL,          -- the same as ms since epoch, UTC
    ppid         INTEGER,
    name         TEXT NOT NULL,             -- comm: the kernel's 15-character name
    exe          TEXT,                      -- /proc/<pid>/exe target; NULL when unreadable
    cmdline      TEXT,                      -- arguments joined by spaces; NULL when unreadable
    uid          INTEGER,                   -- real uid
    user         TEXT,                      -- user name of uid, when it has one
    UNIQUE (host_id, boot_id, pid, start_ticks)
);
CREATE INDEX process_by_name ON process (name);
CREATE INDEX process_by_pid ON process (pid);

-- What can listen: a protocol on a local address and port, in one namespace.
CREATE TABLE listener (
    id          INTEGER PRIMARY KEY,
    netns_id    INTEGER NOT NULL REFERENCES netns(id),
    protocol    TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    address     TEXT NOT NULL,              -- '0.0.0.0' and '::' mean every address
    port        INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
    interface   TEXT NOT NULL DEFAULT '',   -- SO_BINDTODEVICE interface, '' when unbound
    UNIQUE (netns_id, protocol, address, port, interface)
);
CREATE INDEX listener_by_port ON listener (port);

-- A listener seen in consecutive snapshots with the same sockets and holders. An open
-- interval (last_snapshot_id NULL) is still listening: it was seen by every snapshot
-- since first_snapshot_id, so an unchanged machine writes no row here.
CREATE TABLE listener_interval (
    id                 INTEGER PRIMARY KEY,
    listener_id        INTEGER NOT NULL REFERENCES listener(id),
    first_snapshot_id  INTEGER NOT NULL REFERENCES snapshot(id),  -- first snapshot that saw it
    last_snapshot_id   INTEGER REFERENCES snapshot(id),           -- last that saw it; NULL while open
    ended_snapshot_id  INTEGER REFERENCES snapshot(id),           -- first that did not; NULL while open
    socket_count       INTEGER NOT NULL,                          -- kernel sockets (SO_REUSEPORT)
    state_hash         INTEGER NOT NULL                           -- fingerprint of sockets and holders
);
CREATE INDEX interval_by_listener ON listener_interval (listener_id, first_snapshot_id);
CREATE INDEX interval_open ON listener_interval (listener_id) WHERE last_snapshot_id IS NULL;

-- Which process held which socket of an interval. A socket whose holder could not be
-- read has one row with process_id NULL and the reason.
CREATE TABLE holding (
    interval_id  INTEGER NOT NULL REFERENCES listener_interval(id),
    inode        INTEGER NOT NULL,          -- the socket's inode
    socket_uid   INTEGER NOT NULL,          -- the uid that created the socket
    process_id   INTEGER REFERENCES process(id),
    fd           INTEGER,                   -- descriptor number in that process
    unattributed_reason TEXT,               -- why no holder, when process_id is NULL
    CHECK ((process_id IS NULL) = (unattributed_reason IS NOT NULL))
);
CREATE INDEX holding_by_interval ON holding (interval_id);
CREATE INDEX holding_by_process ON holding (process_id);
