-- portaudit store, migration 9: each host's open state in one row, so that a snapshot of an
-- unchanged machine reads that row instead of every open interval, holding and usage value
-- (those reads were half of an unchanged 1,000-socket snapshot).
--
-- It is a cache of what the history says. The triggers below delete it whenever an interval
-- or a holding is written, or a listener, namespace or process changes what it names, however
-- (a snapshot, a prune, SQL typed by hand), so a row that is there was written after the last
-- such change; the collector writes it again after a snapshot that changed something, and
-- every migration empties the table. Deleting rows from it is always safe: the next snapshot
-- reads the history instead. A migration that rebuilds one of these tables must create the
-- table's triggers again (a test checks that they exist).
CREATE TABLE open_state (
    host_id       INTEGER PRIMARY KEY REFERENCES host(id),
    digest        INTEGER NOT NULL,   -- of the open intervals' sockets: namespace, listener, inode, uid, holders of each
    listeners     INTEGER NOT NULL,   -- how many open intervals
    holders       BLOB NOT NULL,      -- their holdings (socket inode, pid, start_ticks, fd, or the reason there is none), packed
    usage_digest  INTEGER             -- of the usage values the latest rows of listener_usage hold; NULL: unknown
);

CREATE TRIGGER open_state_on_interval_insert AFTER INSERT ON listener_interval BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_interval_update AFTER UPDATE ON listener_interval BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_interval_delete AFTER DELETE ON listener_interval BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_holding_insert AFTER INSERT ON holding BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_holding_update AFTER UPDATE ON holding BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_holding_delete AFTER DELETE ON holding BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_listener_update AFTER UPDATE OF netns_id, protocol, address, port, interface ON listener BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_listener_delete AFTER DELETE ON listener BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_netns_update AFTER UPDATE OF host_id, inode ON netns BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_netns_delete AFTER DELETE ON netns BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_process_update AFTER UPDATE OF host_id, pid, start_ticks ON process BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_process_delete AFTER DELETE ON process BEGIN DELETE FROM open_state; END;
CREATE TRIGGER open_state_on_usage_insert AFTER INSERT ON listener_usage BEGIN UPDATE open_state SET usage_digest = NULL WHERE usage_digest IS NOT NULL; END;
CREATE TRIGGER open_state_on_usage_update AFTER UPDATE ON listener_usage BEGIN UPDATE open_state SET usage_digest = NULL WHERE usage_digest IS NOT NULL; END;
CREATE TRIGGER open_state_on_usage_delete AFTER DELETE ON listener_usage BEGIN UPDATE open_state SET usage_digest = NULL WHERE usage_digest IS NOT NULL; END;
