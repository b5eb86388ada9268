public import RampartDevice

/// A throwaway software TPM for a test (see `Swtpm`).
public typealias SwtpmTestServer = Swtpm
