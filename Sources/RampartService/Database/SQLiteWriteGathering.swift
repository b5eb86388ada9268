import CSQLite3
import Foundation

/// An SQLite VFS that is the system's own ("unix") except for write-ahead-log files, whose
/// appended frames it gathers into one `pwrite` per commit.
///
/// SQLite writes each WAL frame as two writes, its 24-byte header and then the page, so an
/// attestation's commit (two pages) took four `pwrite` calls, about half of the commit's
/// time on ext4. Here the writes that append to the log (the log's header when it starts
/// again at offset 0, then frame after frame) collect in memory, and go to the file
/// together as soon as the commit frame's page has come — still inside SQLite's commit,
/// before it records the frames in its WAL index, so SQLite never counts a commit whose
/// bytes the kernel does not have. A failed write fails the commit, as it would have
/// without the gathering.
///
/// Everything else is written at once, after what is gathered: a write anywhere but the
/// log's end (SQLite rewriting frame headers' checksums, or a page it wrote earlier in the
/// same transaction), and what is gathered goes to the file before any read (a checkpoint,
/// a page looked up in the log, recovery), sync, truncation, size query, file control or
/// close. So what SQLite reads and what a crash leaves behind are what they would have been
/// without it.
enum SQLiteWriteGathering {
    static let vfsName = "rampart-unix-gathering"

    /// Registers the VFS once per process (not as the default); false when SQLite has no
    /// default VFS to wrap, in which case connections use SQLite's own.
    static let isRegistered: Bool = {
        guard let base = sqlite3_vfs_find(nil) else { return false }
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        vfs.initialize(to: base.pointee)
        vfs.pointee.pNext = nil
        vfs.pointee.szOsFile = Int32(innerOffset) + base.pointee.szOsFile
        vfs.pointee.zName = UnsafePointer(strdup(vfsName))
        vfs.pointee.pAppData = UnsafeMutableRawPointer(base)
        vfs.pointee.xOpen = { vfs, name, file, flags, outFlags in
            guard let vfs, let file else { return SQLITE_MISUSE }
            let base = vfs.pointee.pAppData.assumingMemoryBound(to: sqlite3_vfs.self)
            // Every file but a WAL is the system VFS's own, in the same memory.
            guard flags & SQLITE_OPEN_WAL != 0 else { return base.pointee.xOpen(base, name, file, flags, outFlags) }
            let status = base.pointee.xOpen(base, name, inner(file), flags, outFlags)
            guard status == SQLITE_OK else {
                // SQLite reads pMethods whether or not the open succeeded; nil: nothing to close.
                file.pointee.pMethods = nil
                return status
            }
            state(file).initialize(to: Gathered())
            file.pointee.pMethods = UnsafePointer(methods)
            return SQLITE_OK
        }
        return sqlite3_vfs_register(vfs, 0) == SQLITE_OK
    }()

    /// Whether `file` is a WAL file opened through this VFS.
    static func gathers(_ file: UnsafeMutablePointer<sqlite3_file>) -> Bool {
        file.pointee.pMethods == UnsafePointer(methods)
    }

    /// What a WAL file has gathered and not yet written.
    private struct Gathered {
        var buffer: UnsafeMutableRawPointer?
        var count = 0
        /// Where in the file the buffer's first byte goes.
        var offset: Int64 = 0
        /// Where the log ends: the next frame is appended here. Unknown (-1) until the first
        /// write after the file is opened, which is written as it comes.
        var end: Int64 = -1
        /// The commit frame's header came: its page, the next write, completes the commit.
        var commitPageIsNext = false
    }

    /// Large transactions write their frames in pieces of at most this many bytes. The
    /// system VFS takes no single write of 128 KiB or more (it keeps a length's low 17 bits).
    private static let capacity = 64 * 1024
    /// A frame header's size, and where in it the commit frame keeps the database size in
    /// pages (zero in every other frame).
    private static let frameHeaderSize = 24
    private static let commitSizeRange = 4..<8

    private static let stateOffset = MemoryLayout<sqlite3_file>.stride
    private static let innerOffset = (stateOffset + MemoryLayout<Gathered>.stride + 15) & ~15

    private static func state(_ file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutablePointer<Gathered> {
        (UnsafeMutableRawPointer(file) + stateOffset).assumingMemoryBound(to: Gathered.self)
    }

    private static func inner(_ file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutablePointer<sqlite3_file> {
        (UnsafeMutableRawPointer(file) + innerOffset).assumingMemoryBound(to: sqlite3_file.self)
    }

    private static func innerMethods(_ file: UnsafeMutablePointer<sqlite3_file>) -> sqlite3_io_methods {
        inner(file).pointee.pMethods.pointee
    }

    /// Writes what is gathered, if anything; the buffer is empty afterwards whatever the
    /// outcome (a failure fails the SQLite call that caused the flush, and so its transaction).
    private static func flush(_ file: UnsafeMutablePointer<sqlite3_file>) -> Int32 {
        let gathered = state(file)
        guard gathered.pointee.count > 0, let buffer = gathered.pointee.buffer else { return SQLITE_OK }
        let count = gathered.pointee.count
        gathered.pointee.count = 0
        return innerMethods(file).xWrite(inner(file), buffer, Int32(count), gathered.pointee.offset)
    }

    private static func write(
        _ file: UnsafeMutablePointer<sqlite3_file>, _ bytes: UnsafeRawPointer, _ amount: Int32, _ offset: Int64
    ) -> Int32 {
        let gathered = state(file)
        let length = Int(amount)
        let completesCommit = gathered.pointee.commitPageIsNext
        gathered.pointee.commitPageIsNext = false
        // An append: the log's header (the log starts again) or the next bytes at its end.
        let appends = offset == 0 || offset == gathered.pointee.end
        if !appends || gathered.pointee.count + length > capacity || offset == 0 {
            let status = flush(file)
            guard status == SQLITE_OK else { return status }
        }
        if !appends || length > capacity {
            let status = innerMethods(file).xWrite(inner(file), bytes, amount, offset)
            if status == SQLITE_OK { gathered.pointee.end = max(gathered.pointee.end, offset + Int64(length)) }
            return status
        }
        if gathered.pointee.buffer == nil {
            guard let buffer = malloc(capacity) else { return SQLITE_NOMEM }
            gathered.pointee.buffer = buffer
        }
        if gathered.pointee.count == 0 { gathered.pointee.offset = offset }
        (gathered.pointee.buffer! + gathered.pointee.count).copyMemory(from: bytes, byteCount: length)
        gathered.pointee.count += length
        gathered.pointee.end = offset + Int64(length)
        if completesCommit { return flush(file) }
        if length == frameHeaderSize {
            let header = UnsafeRawBufferPointer(start: bytes, count: length)
            gathered.pointee.commitPageIsNext = header[commitSizeRange].contains { $0 != 0 }
        }
        return SQLITE_OK
    }

    /// Version 1 methods: a WAL file is never memory-mapped and has no shared memory of its own.
    /// Written once, before any file uses them, and only read afterwards.
    nonisolated(unsafe) private static let methods: UnsafeMutablePointer<sqlite3_io_methods> = {
        let methods = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
        methods.initialize(to: sqlite3_io_methods())
        methods.pointee.iVersion = 1
        methods.pointee.xClose = { file in
            guard let file else { return SQLITE_MISUSE }
            let flushed = flush(file)
            free(state(file).pointee.buffer)
            state(file).deinitialize(count: 1)
            let closed = innerMethods(file).xClose(inner(file))
            return flushed == SQLITE_OK ? closed : flushed
        }
        methods.pointee.xRead = { file, buffer, amount, offset in
            guard let file else { return SQLITE_MISUSE }
            let status = flush(file)
            guard status == SQLITE_OK else { return status }
            return innerMethods(file).xRead(inner(file), buffer, amount, offset)
        }
        methods.pointee.xWrite = { file, bytes, amount, offset in
            guard let file, let bytes else { return SQLITE_MISUSE }
            return write(file, bytes, amount, offset)
        }
        methods.pointee.xTruncate = { file, size in
            guard let file else { return SQLITE_MISUSE }
            let status = flush(file)
            guard status == SQLITE_OK else { return status }
            state(file).pointee.end = min(state(file).pointee.end, size)
            return innerMethods(file).xTruncate(inner(file), size)
        }
        methods.pointee.xSync = { file, flags in
            guard let file else { return SQLITE_MISUSE }
            let status = flush(file)
            guard status == SQLITE_OK else { return status }
            return innerMethods(file).xSync(inner(file), flags)
        }
        methods.pointee.xFileSize = { file, size in
            guard let file else { return SQLITE_MISUSE }
            let status = flush(file)
            guard status == SQLITE_OK else { return status }
            return innerMethods(file).xFileSize(inner(file), size)
        }
        methods.pointee.xLock = { file, level in
            guard let file else { return SQLITE_MISUSE }
            return innerMethods(file).xLock(inner(file), level)
        }
        methods.pointee.xUnlock = { file, level in
            guard let file else { return SQLITE_MISUSE }
            return innerMethods(file).xUnlock(inner(file), level)
        }
        methods.pointee.xCheckReservedLock = { file, result in
            guard let file else { return SQLITE_MISUSE }
            return innerMethods(file).xCheckReservedLock(inner(file), result)
        }
        methods.pointee.xFileControl = { file, operation, argument in
            guard let file else { return SQLITE_MISUSE }
            let status = flush(file)
            guard status == SQLITE_OK else { return status }
            return innerMethods(file).xFileControl(inner(file), operation, argument)
        }
        methods.pointee.xSectorSize = { file in
            guard let file else { return 0 }
            return innerMethods(file).xSectorSize(inner(file))
        }
        methods.pointee.xDeviceCharacteristics = { file in
            guard let file else { return 0 }
            return innerMethods(file).xDeviceCharacteristics(inner(file))
        }
        return methods
    }()
}
