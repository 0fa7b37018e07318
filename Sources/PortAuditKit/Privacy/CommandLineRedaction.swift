import Foundation

/// Masks the values in a command line that look like secrets, before it is stored.
/// Errs towards masking: a masked port number costs less than a stored password.
public enum CommandLineRedaction {
    public static let mask = "***"

    /// Option and variable names whose value is a secret: --password, token=, api_key=,
    /// PGPASSWORD=, --client-secret, --auth-key …
    static let secretName = try! NSRegularExpression(
        pattern: #"(pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|auth|credentials?)$"#,
        options: [.caseInsensitive])

    /// scheme://user:password@host — keeps the user, masks the password.
    static let urlCredentials = try! NSRegularExpression(pattern: #"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^@\s/]*@"#)

    /// Short options that take a password right after them (mysql -pSECRET, -p SECRET).
    static let shortPasswordOptions: Set<String> = ["-p"]

    /// HTTP authorization schemes, whose credentials follow them ("Authorization: Bearer TOKEN").
    static let authorizationSchemes: Set<String> = ["bearer", "basic", "digest"]

    public static func redact(_ cmdline: String) -> String {
        var words = cmdline.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        var maskNext = false
        for i in words.indices {
            var word = words[i]
            if maskNext, !word.isEmpty {
                maskNext = false
                if !word.hasPrefix("-") || word == "-" { words[i] = mask; continue }
            }
            word = maskURLCredentials(word)
            // "Authorization: Bearer TOKEN" or "Authorization:Basic TOKEN": only after the header's name.
            let afterHeader = word.lowercased().hasPrefix("authorization:") || i > 0 && words[i - 1].lowercased().hasSuffix("authorization:")
            if afterHeader, let scheme = word.split(separator: ":").last, authorizationSchemes.contains(scheme.lowercased()) {
                maskNext = true
                words[i] = word
                continue
            }
            if let equals = word.firstIndex(of: "=") {
                let name = String(word[..<equals])
                if isSecretName(name) { word = name + "=" + mask }
            } else if word.hasPrefix("-") {
                let name = word
                if shortPasswordOptions.contains(name) {
                    maskNext = true
                } else if let short = shortPasswordOptions.first(where: { name.hasPrefix($0) && name.count > $0.count && !name.hasPrefix("--") }) {
                    word = short + mask  // -pSECRET
                } else if isSecretName(name) {
                    maskNext = true  // --password SECRET
                }
            }
            words[i] = word
        }
        return words.joined(separator: " ")
    }

    static func isSecretName(_ name: String) -> Bool {
        let bare = name.drop { $0 == "-" }
        guard !bare.isEmpty, !bare.contains("/") else { return false }
        let text = String(bare)
        return secretName.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    static func maskURLCredentials(_ word: String) -> String {
        urlCredentials.stringByReplacingMatches(in: word, range: NSRange(word.startIndex..., in: word),
                                                withTemplate: "$1:\(mask)@")
    }
}

/// How much of a holder's command line the store keeps.
public enum CommandLinePolicy: String, Sendable, CaseIterable, Comparable {
    /// Every argument, as the kernel reports it.
    case full
    /// Secret-looking values masked (see `CommandLineRedaction`).
    case redact
    /// None: the column stays NULL.
    case none

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    public func apply(_ cmdline: String?) -> String? {
        switch self {
        case .full: cmdline
        case .redact: cmdline.map(CommandLineRedaction.redact)
        case .none: nil
        }
    }
}
