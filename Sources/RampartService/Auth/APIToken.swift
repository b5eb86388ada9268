import Crypto
import Foundation
import RampartModel

/// API tokens for people and scripts: 256 random bits, shown once, stored only as a
/// SHA-256 hash. The `rpt_` prefix lets secret scanners recognise a leaked token.
enum APIToken {
    static let prefix = "rpt_"

    /// A new secret and the hash to store for it.
    static func generate() -> (secret: String, hash: String) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let secret = prefix + Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return (secret, hash(secret))
    }

    static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).hexString
    }

    /// Default and longest lifetime of a token, in days.
    static let defaultLifetimeDays = 90
    static let maximumLifetimeDays = 365
    /// The bootstrap operator token printed on first start lives this long.
    static let bootstrapLifetimeDays = 7
}
