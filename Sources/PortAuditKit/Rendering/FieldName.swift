/// The field names every row-printing command shares: one concept, one name.
public enum FieldName {
    public static let proto = "protocol"
    public static let address = "address"
    public static let port = "port"
    public static let interface = "interface"
    public static let service = "service"
    public static let range = "range"
    public static let hostname = "hostname"
    public static let pid = "pid"
    public static let process = "process"
    public static let user = "user"
    public static let cmdline = "cmdline"
    public static let firstSeen = "first_seen"
    public static let lastSeen = "last_seen"
    public static let goneBy = "gone_by"
    public static let listening = "listening"
    public static let netns = "netns"
    public static let netnsName = "netns_name"
    public static let netnsIsHost = "netns_is_host"
    /// True when a gap in the snapshots lies between the row's bounds: nothing is known in it.
    public static let acrossGap = "across_gap"
}
