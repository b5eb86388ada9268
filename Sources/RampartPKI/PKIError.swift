public import RampartModel

/// Why a PKI operation failed.
public struct PKIError: RampartError, Equatable {
    public let code: String
    public let message: String
    public var statusCode: Int { 500 }

    /// Errors are equal when their codes are: the message may carry details.
    public static func == (lhs: PKIError, rhs: PKIError) -> Bool { lhs.code == rhs.code }

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public static func invalidPEM(_ what: String) -> PKIError {
        PKIError(code: "invalid_pem", message: "\(what) is not valid PEM")
    }
    public static func sealedKeyInvalid(_ detail: String) -> PKIError {
        PKIError(code: "sealed_key_invalid", message: "a sealed CA key could not be opened: \(detail)")
    }
    public static func keyMissing(_ path: String) -> PKIError {
        PKIError(code: "ca_key_missing", message: "CA private key not found at \(path)")
    }
}
