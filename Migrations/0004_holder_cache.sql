-- portaudit store, migration 0004: snapshots that confirm known holders instead of walking.
-- A snapshot may take the holders of the sockets the previous snapshot saw from the store and
-- confirm each one (same pid and start time, the descriptor still names the socket) instead
-- of reading every /proc/<pid>/fd link. Such a snapshot cannot see a process that started
-- sharing a known socket (a fork), so a full walk is made periodically; this column says which
-- snapshots made one, and is how the collector knows when the next one is due.
-- 1 and 0 are stored in the record header alone (no payload byte), so an unchanged
-- snapshot stays as small as before.
ALTER TABLE snapshot ADD COLUMN full_walk INTEGER NOT NULL DEFAULT 1;  -- 1: every process's descriptors were read
