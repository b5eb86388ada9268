public import RampartModel

/// Why an image package, its manifest or its payload was refused. 400 at the service: the
/// uploader sent something that is not a valid package.
public struct ImagePackageError: RampartError, Equatable {
    public let code: String
    public let message: String
    public var statusCode: Int { 400 }

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public static func == (lhs: ImagePackageError, rhs: ImagePackageError) -> Bool { lhs.code == rhs.code }

    static let alreadySigned = ImagePackageError(
        "package_already_signed",
        "the package already carries a signature or fields only the service sets (imageId, tenantId, signedAt); upload the unsigned package `rampart app pack` wrote")
}
