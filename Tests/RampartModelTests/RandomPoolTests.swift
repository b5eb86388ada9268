import RampartModel
import Testing

/// The pool hands every byte out once, across refills and concurrent callers.
@Suite struct RandomPoolTests {
    @Test func noTwoCallersGetTheSameBytes() async {
        // 20-byte draws, as serial numbers take, well past several refills of the pool.
        let draws = await withTaskGroup(of: [[UInt8]].self) { group in
            for _ in 0..<4 {
                group.addTask { (0..<1000).map { _ in RandomPool.bytes(20) } }
            }
            return await group.reduce(into: [[UInt8]]()) { $0 += $1 }
        }
        #expect(draws.count == 4000)
        #expect(Set(draws).count == 4000)
        #expect(draws.allSatisfy { $0.count == 20 })
        // Not all zeros, and every byte value turns up in 80,000 bytes.
        #expect(Set(draws.joined()).count == 256)
        #expect(RandomPool.bytes(0).isEmpty)
        #expect(RandomPool.bytes(4096).count == 4096)
    }
}
