import Foundation
import GRDB

/// A host's open state in one row of `open_state` (migration 0009): a digest of the sockets of
/// its open intervals, their holdings, and a digest of the usage values last stored. A snapshot
/// whose sockets have the same digest changes nothing, so it reads this row instead of every
/// open interval; the holders to confirm and the usage values to compare come from it as well.
/// Those three reads were half of an unchanged 1,000-socket snapshot's instructions.
///
/// Triggers delete the row whenever an interval or a holding is written or what they name
/// changes (and forget the usage digest whenever `listener_usage` is written), so a row that
/// is there was written after the last such change (see migration 0009).
enum OpenState {
    struct Cached {
        var digest: Int64
        /// How many listeners the sockets make.
        var listeners: Int
        var usageDigest: Int64?
    }

    // A test checks their plans.
    static let cachedSQL = "SELECT digest, listeners, usage_digest FROM open_state WHERE host_id = ?"
    static let holdersSQL = "SELECT holders FROM open_state WHERE host_id = ?"

    static func cached(_ db: Database, host: Int64) throws -> Cached? {
        try Row.fetchOne(db.cachedStatement(sql: cachedSQL), arguments: [host])
            .map { Cached(digest: $0[0], listeners: $0[1], usageDigest: $0[2]) }
    }

    /// The holdings of the host's open intervals, as `HolderCache.knownHoldingsSQL` reads them;
    /// nil when there is no row (or one this binary cannot read).
    static func holders(_ db: Database, host: Int64) throws -> [UInt64: KnownHolders.Socket]? {
        guard let packed = try Data.fetchOne(db, sql: holdersSQL, arguments: [host])
        else { return nil }
        return HolderPacking.unpack(packed)
    }

    /// Records `sockets` (with their `digest`) as the host's whole open state, once written.
    /// (No sockets pack to empty bytes, which may be bound as NULL.)
    static func save(_ db: Database, host: Int64, digest: Int64, listeners: Int, sockets: [ListeningSocket]) throws {
        try db.execute(sql: """
            INSERT OR REPLACE INTO open_state (host_id, digest, listeners, holders, usage_digest) VALUES (?, ?, ?, coalesce(?, x''), NULL)
            """, arguments: [host, digest, listeners, HolderPacking.pack(sockets)])
    }

    static func saveUsage(_ db: Database, host: Int64, digest: Int64) throws {
        try db.execute(sql: "UPDATE open_state SET usage_digest = ? WHERE host_id = ?", arguments: [digest, host])
    }

    /// Of `sockets`, whatever their order: each one's namespace, listener key, inode, uid,
    /// holders and unattributed reason, all that the intervals and holdings keep of it.
    static func digest(of sockets: [ListeningSocket], namespace: (ListeningSocket) -> UInt64) -> Int64 {
        var sum: UInt64 = 0
        for socket in sockets {
            var word = StableHash.mixed(socket.inode, UInt64(socket.uid), socket.key.stableHash)
            // Holders by sum as well: their order is the source's.
            var holders: UInt64 = 0
            for holder in socket.holders {
                let pid = UInt64(UInt32(bitPattern: holder.process.pid)), fd = UInt64(UInt32(bitPattern: holder.fd))
                holders &+= StableHash.mixed(holder.process.startTicks, pid, fd)
            }
            word = StableHash.mixed(word ^ holders) ^ UInt64(socket.holders.count)
            if socket.holders.isEmpty {
                // As the writer stores it.
                word ^= StableHash.fold(socket.storedUnattributedReason, into: StableHash.seed)
            }
            sum &+= StableHash.mixed(StableHash.mixed(word) ^ namespace(socket))
        }
        return Int64(bitPattern: StableHash.mixed(sum ^ UInt64(sockets.count)))
    }

    /// Of the TCP listeners' usage values (accept queue, connections) in the namespace
    /// `netns`, whatever their order: usage is kept per namespace, the row per host.
    static func usageDigest(netns: UInt64, queues: [ListenerKey: Int], connections: [ListenerKey: Int]) -> Int64 {
        var sum = StableHash.mixed(netns)
        for (key, queue) in queues {
            let count = UInt64(truncatingIfNeeded: connections[key] ?? 0)
            sum &+= StableHash.mixed(UInt64(truncatingIfNeeded: queue), count, key.stableHash)
        }
        return Int64(bitPattern: StableHash.mixed(sum ^ UInt64(queues.count)))
    }
}

/// The holdings of open intervals as bytes (little-endian), per socket: inode (8), number of
/// holders (4), then each holder's pid (4), start ticks (8) and fd (4); a socket with no
/// holder has instead the length of its unattributed reason (4) and its UTF-8.
enum HolderPacking {
    static func pack(_ sockets: [ListeningSocket]) -> Data {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(sockets.count * 32)
        func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        for socket in sockets {
            append(socket.inode)
            append(UInt32(socket.holders.count))
            if socket.holders.isEmpty {
                let reason = Array(socket.storedUnattributedReason.utf8)
                append(UInt32(reason.count))
                bytes += reason
            }
            for holder in socket.holders {
                append(holder.process.pid)
                append(holder.process.startTicks)
                append(holder.fd)
            }
        }
        return Data(bytes)
    }

    /// nil when `packed` is not what `pack` writes (truncated, or edited by hand).
    static func unpack(_ packed: Data) -> [UInt64: KnownHolders.Socket]? {
        packed.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [UInt64: KnownHolders.Socket]? in
            var offset = 0
            func read<T: FixedWidthInteger>(_: T.Type) -> T? {
                guard raw.count - offset >= MemoryLayout<T>.size else { return nil }
                defer { offset += MemoryLayout<T>.size }
                return T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
            }
            var sockets: [UInt64: KnownHolders.Socket] = [:]
            sockets.reserveCapacity(raw.count / 28)  // a socket with one holder
            while offset < raw.count {
                guard let inode = read(UInt64.self), let count = read(UInt32.self) else { return nil }
                var socket = sockets[inode] ?? KnownHolders.Socket(holders: [])
                if count == 0 {
                    guard let length = read(UInt32.self), raw.count - offset >= Int(length) else { return nil }
                    socket.unattributedReason = String(decoding: UnsafeRawBufferPointer(rebasing: raw[offset..<offset + Int(length)]),
                                                       as: UTF8.self)
                    offset += Int(length)
                }
                for _ in 0..<count {
                    guard let pid = read(Int32.self), let ticks = read(UInt64.self), let fd = read(Int32.self) else { return nil }
                    socket.holders.append(SocketHolder(process: ProcessIdentity(pid: pid, startTicks: ticks), fd: fd))
                }
                sockets[inode] = socket
            }
            return sockets
        }
    }
}
