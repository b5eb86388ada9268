/// Every input one byte away from `bytes`: each byte replaced by each of `replacements`
/// (other than itself), each byte deleted, each byte doubled. What a parser held to a
/// reference is fed, so that the two are compared just off every valid input.
public func oneByteEdits(of bytes: [UInt8], replacements: [UInt8]) -> [[UInt8]] {
    var edits: [[UInt8]] = []
    for position in bytes.indices {
        for replacement in replacements where replacement != bytes[position] {
            var edited = bytes
            edited[position] = replacement
            edits.append(edited)
        }
        var deleted = bytes
        deleted.remove(at: position)
        edits.append(deleted)
        var doubled = bytes
        doubled.insert(bytes[position], at: position)
        edits.append(doubled)
    }
    return edits
}
