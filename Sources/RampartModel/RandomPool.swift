#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Random bytes from the kernel's CSPRNG, fetched 4 KiB at a time and handed out once each.
///
/// For values that are public once used — certificate serial numbers, the random part of
/// a nonce — that the service makes on every attestation: asking the kernel costs a few
/// microseconds on a VM (and BoringSSL asks it on every call), as much as the rest of making
/// a nonce. Keys come from their own generators, never from here. A process that forks
/// without exec would hand the same bytes out twice; Rampart's processes do not.
public enum RandomPool {
    static let size = 4096
    private static let pool = Mutex<(bytes: [UInt8], next: Int)>(([], 0))

    /// `count` bytes no other caller gets (at most 4096).
    public static func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0 && count <= size, "at most \(size) bytes at a time")
        return pool.withLock { pool in
            if pool.next + count > pool.bytes.count {
                pool.bytes = kernelRandom(size)
                pool.next = 0
            }
            defer { pool.next += count }
            return Array(pool.bytes[pool.next..<pool.next + count])
        }
    }

    /// `count` bytes from the kernel's CSPRNG through `/dev/urandom` (the same generator as
    /// `getrandom`, which Swift's Glibc module does not declare), retried on interruption.
    static func kernelRandom(_ count: Int) -> [UInt8] {
        let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        precondition(descriptor >= 0, "cannot open /dev/urandom: errno \(errno)")
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = bytes.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress! + filled, count - filled)
            }
            if got < 0 {
                precondition(errno == EINTR, "reading /dev/urandom failed: errno \(errno)")
                continue
            }
            precondition(got > 0, "/dev/urandom ended")
            filled += got
        }
        return bytes
    }
}
