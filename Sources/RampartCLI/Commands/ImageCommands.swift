import ArgumentParser
import Foundation
import RampartImage
import RampartModel
import SwiftASN1
import X509

struct ImageCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Add app images to the tenant and read them back.",
        discussion: """
            An image is an app package (`rampart app pack`) the service has checked and signed with \
            the tenant's image-signing key, whose certificate the tenant CA issued. Images are \
            immutable: a change is a new image with a new version.
            """,
        subcommands: [Add.self, List.self, Show.self, Download.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload an app package; the service checks it, signs it and assigns its image ID (Contributor).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The package `rampart app pack` wrote.") var file: String

        func run() async throws {
            guard let bytes = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            let image = try await global.withClient { client in
                try await client.addImage(package: bytes, tenant: try await global.tenantID(client))
            }
            try global.emit(image) {
                "Added image \($0.id): \($0.name) \($0.version) (component \($0.componentId), security version \($0.securityVersion)), signed package \($0.length) bytes, SHA-256 \($0.sha256)."
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's images, oldest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this component's images.") var component: String?

        func run() async throws {
            let componentID = try component.map { text in
                guard let id = ComponentID(text) else { throw ValidationError("--component must be a component ID (a UUID)") }
                return id
            }
            let images = try await global.withClient { client in
                try await client.images(tenant: try await global.tenantID(client), component: componentID)
            }
            try global.emit(images) { images in
                table(
                    ["ID", "NAME", "VERSION", "SECURITY VERSION", "COMPONENT", "ADDED", "BY"],
                    images.map {
                        [$0.id.description, $0.name, $0.version, "\($0.securityVersion)", $0.componentId.description,
                         date($0.createdAt), $0.createdBy]
                    })
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one image.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The image ID.") var image: String

        func run() async throws {
            let id = try imageID(image)
            let document = try await global.withClient { client in try await client.image(id, tenant: try await global.tenantID(client)) }
            try global.emit(document) {
                """
                Image      \($0.id)
                Name       \($0.name)
                Version    \($0.version) (security version \($0.securityVersion))
                Kind       \($0.kind.rawValue)
                Component  \($0.componentId)
                Package    \($0.length) bytes, SHA-256 \($0.sha256)
                Added      \(date($0.createdAt)) by \($0.createdBy)
                """
            }
        }
    }

    struct Download: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download an image's signed package, verified before it is written.",
            discussion: """
                The signature is checked as a device checks it: the signing certificate must chain to \
                the Rampart root the service presents (its TLS certificate pinned at login) and belong \
                to this tenant's image-signing key, and every entry must match the signed metadata.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The image ID.") var image: String
        @Option(help: "Where to write the package.") var out: String

        func run() async throws {
            let id = try imageID(image)
            let (bytes, tenant, rootPEM) = try await global.withClient { client in
                let tenant = try await global.tenantID(client)
                return (try await client.imagePackage(id, tenant: tenant), tenant, try await client.rootCertificatePEM())
            }
            let package: ImagePackage
            do {
                package = try ImagePackage(zipped: bytes)
                try await ImagePackageVerifier(root: try Certificate(pemEncoded: rootPEM)).verify(package, tenant: tenant, now: Date())
            } catch let error as ImagePackageError {
                throw CLIError("the downloaded package did not verify, nothing was written: \(error.message) [\(error.code)]")
            }
            guard package.metadata.imageId == id else { throw CLIError("the service sent another image's package; nothing was written") }
            do {
                try bytes.write(to: URL(fileURLWithPath: out))
            } catch {
                throw CLIError("cannot write \(out): \(error.localizedDescription)")
            }
            try global.emit(package.metadata) {
                "Wrote \(out): \($0.name) \($0.version), \(bytes.count) bytes, signature verified."
            }
        }
    }
}

private func imageID(_ text: String) throws -> ImageID {
    guard let id = ImageID(text) else { throw ValidationError("'\(text)' is not an image ID (a UUID)") }
    return id
}
