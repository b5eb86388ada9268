import Foundation

/// A new, empty directory under the system's temporary directory, for one test to own.
public func temporaryDirectory(prefix: String = "rampart-test") throws -> String {
    var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("\(prefix)-XXXXXX").utf8CString)
    guard mkdtemp(&template) != nil else { throw HarnessError("mkdtemp failed: \(String(cString: strerror(errno)))") }
    return String(cString: template)
}
