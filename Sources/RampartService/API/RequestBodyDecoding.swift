import Foundation
import Hummingbird
import NIOCore
import RampartModel

extension Request {
    /// Reads and strictly decodes a JSON body: at most ``APILimits/maxBodyBytes``, an
    /// object, no field the type does not know, every value of the right type.
    func decodeBody<Body: APIRequestBody>(_ type: Body.Type) async throws -> Body {
        var request = self
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: APILimits.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw ServiceError.bodyTooLarge
        }
        if let contentType = headers[.contentType], !contentType.lowercased().hasPrefix("application/json") {
            throw ServiceError(415, "unsupported_media_type", "send the body as application/json, not \(contentType)")
        }
        let data = Data(buffer.readableBytesView)
        guard let object = try? JSONSerialization.jsonObject(with: data), let fields = object as? [String: Any] else {
            throw ServiceError(400, "malformed_json", "the body must be one JSON object")
        }
        let unknown = Set(fields.keys).subtracting(Body.fields)
        guard unknown.isEmpty else {
            throw ServiceError(
                400, "unknown_field",
                "unknown field(s) \(unknown.sorted().joined(separator: ", ")); allowed: \(Body.fields.sorted().joined(separator: ", "))")
        }
        do {
            return try JSONDecoder.rampart.decode(Body.self, from: data)
        } catch let error as DecodingError {
            throw ServiceError.invalidField(error.fieldPath, error.reason)
        }
    }
}

extension DecodingError {
    var fieldPath: String {
        let path: [any CodingKey]
        switch self {
        case .keyNotFound(let key, let context): path = context.codingPath + [key]
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            path = context.codingPath
        @unknown default: path = []
        }
        return path.isEmpty ? "body" : path.map(\.stringValue).joined(separator: ".")
    }

    var reason: String {
        switch self {
        case .keyNotFound: "is required"
        case .typeMismatch(let type, _): "must be of type \(type)"
        case .valueNotFound: "must not be null"
        case .dataCorrupted(let context): context.debugDescription
        @unknown default: "is invalid"
        }
    }
}

/// Checks a name (tenant, product, device group, user, token) once, at the edge.
func validatedName(_ name: String, field: String = "name") throws -> String {
    let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !trimmed.isEmpty else { throw ServiceError.invalidField(field, "must not be empty") }
    guard trimmed.count <= APILimits.maxNameLength else {
        throw ServiceError.invalidField(field, "must be at most \(APILimits.maxNameLength) characters")
    }
    guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
        throw ServiceError.invalidField(field, "must not contain control characters")
    }
    return trimmed
}

func validatedDescription(_ text: String?) throws -> String {
    let text = text ?? ""
    guard text.count <= APILimits.maxDescriptionLength else {
        throw ServiceError.invalidField("description", "must be at most \(APILimits.maxDescriptionLength) characters")
    }
    return text
}
