import Synchronization

/// A first-come first-served lock for async code, for resources that take one user at a
/// time (the single SQLite connection).
///
/// Not an actor: entering an actor and leaving it for the body, then entering it again to
/// release, moved every statement between threads (several microseconds each, much of
/// an attestation's database time). Here an uncontended lock is taken and given back under
/// a mutex on the caller's own thread; only a caller that has to wait suspends, and the
/// lock is handed straight to the longest waiter.
final class AsyncLock: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// Where the next waiter to wake is in `waiters` (a queue without shifting).
        var head = 0
    }

    private let state = Mutex(State())

    func withLock<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        let acquired = state.withLock { state in
            guard !state.held else { return false }
            state.held = true
            return true
        }
        if acquired { return }
        await withCheckedContinuation { continuation in
            let acquiredMeanwhile = state.withLock { state in
                guard state.held else {
                    state.held = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquiredMeanwhile { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.head < state.waiters.count else {
                state.held = false
                state.waiters.removeAll(keepingCapacity: true)
                state.head = 0
                return nil
            }
            // Handed over: `held` stays true for the waiter.
            let next = state.waiters[state.head]
            state.head += 1
            // Under steady contention the queue never drains: drop the woken part now and then.
            if state.head >= 64, state.head * 2 >= state.waiters.count {
                state.waiters.removeFirst(state.head)
                state.head = 0
            }
            return next
        }
        next?.resume()
    }
}
