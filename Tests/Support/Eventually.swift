/// Whether `condition` comes to hold within `seconds`, checked every 20 ms: for what an app
/// or a server does in its own time, which a machine busy with the rest of the suite can
/// delay far beyond its usual milliseconds. Returns as soon as it holds.
public func eventually(within seconds: Double = 20, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline || Task.isCancelled { return false }
        try? await Task.sleep(for: .milliseconds(20))
    }
}
