/// The body of every error the Security Service returns:
/// `{"error": "device_claimed_elsewhere", "message": "…"}`.
///
/// `error` is a stable machine code that scripts may match on; `message` is for people.
public struct APIErrorBody: Codable, Sendable, Equatable {
    public var error: String
    public var message: String

    public init(error: String, message: String) {
        self.error = error
        self.message = message
    }
}

/// An error with a stable machine code and an HTTP status: the shape every
/// Rampart module's error takes so the service can answer it and the CLI can print it.
public protocol RampartError: Error, CustomStringConvertible {
    /// Stable snake_case code, e.g. `nonce_replayed`.
    var code: String { get }
    /// The HTTP status the service answers with.
    var statusCode: Int { get }
    /// A sentence saying what went wrong and, where it helps, what to do.
    var message: String { get }
}

extension RampartError {
    public var description: String { "\(message) [\(code)]" }
    public var body: APIErrorBody { APIErrorBody(error: code, message: message) }
}
