/// Whether two coordinates are a point of P-256 (FIPS 186-4, D.1.2.3): both below the
/// field prime p, and y² = x³ − 3x + b (mod p). The curve's cofactor is 1, so every such
/// point is in the group of the base point.
///
/// Attestation checks the key a device asks it to certify before signing a certificate
/// for it. swift-crypto can only check a point by building a BoringSSL key from it (big
/// numbers, an EC_KEY, conversions in and out), ≈ 3 µs; the equation itself is five
/// multiplications. They run here in Montgomery form (R = 2²⁵⁶) on four 64-bit limbs,
/// least significant first. Nothing here is secret, so nothing needs constant time. A test
/// holds the answer to swift-crypto's on valid points, their negations and near misses.
enum P256Point {
    typealias Element = InlineArray<4, UInt64>

    static let p: Element = [0xffff_ffff_ffff_ffff, 0x0000_0000_ffff_ffff, 0x0000_0000_0000_0000, 0xffff_ffff_0000_0001]
    /// R² mod p: multiplying by it brings a number into Montgomery form.
    private static let rSquared: Element = [
        0x0000_0000_0000_0003, 0xffff_fffb_ffff_ffff, 0xffff_ffff_ffff_fffe, 0x0000_0004_ffff_fffd,
    ]
    /// The curve's b, in Montgomery form (b·R mod p).
    private static let bMontgomery: Element = [
        0xd89c_df62_29c4_bddf, 0xacf0_05cd_7884_3090, 0xe5a2_20ab_f721_2ed6, 0xdc30_061d_0487_4834,
    ]

    /// `x963`: 0x04, then x and y, 32 bytes each, big-endian.
    static func isOnCurve(x963: some Collection<UInt8>) -> Bool {
        let bytes = Array(x963)
        guard bytes.count == 65, bytes[0] == 0x04 else { return false }
        let x = element(bytes[1..<33]), y = element(bytes[33..<65])
        guard isBelowP(x), isBelowP(y) else { return false }
        let xm = multiply(x, rSquared), ym = multiply(y, rSquared)
        let cube = multiply(multiply(xm, xm), xm)
        let threeX = add(add(xm, xm), xm)
        let right = add(subtract(cube, threeX), bMontgomery)
        return equal(multiply(ym, ym), right)
    }

    /// 32 big-endian bytes as limbs.
    private static func element(_ bytes: ArraySlice<UInt8>) -> Element {
        var limbs = Element(repeating: 0)
        var index = bytes.startIndex
        for limb in (0..<4).reversed() {
            var value: UInt64 = 0
            for _ in 0..<8 {
                value = value << 8 | UInt64(bytes[index])
                index += 1
            }
            limbs[limb] = value
        }
        return limbs
    }

    private static func isBelowP(_ a: Element) -> Bool {
        for limb in (0..<4).reversed() where a[limb] != p[limb] { return a[limb] < p[limb] }
        return false
    }

    private static func equal(_ a: Element, _ b: Element) -> Bool {
        (0..<4).allSatisfy { a[$0] == b[$0] }
    }

    /// a − b over four limbs, and whether it borrowed.
    private static func rawSubtract(_ a: Element, _ b: Element) -> (Element, Bool) {
        var result = Element(repeating: 0)
        var borrow = false
        for limb in 0..<4 {
            let (first, overflowA) = a[limb].subtractingReportingOverflow(b[limb])
            let (second, overflowB) = first.subtractingReportingOverflow(borrow ? 1 : 0)
            result[limb] = second
            borrow = overflowA || overflowB
        }
        return (result, borrow)
    }

    /// a + b over four limbs, and whether it carried out of them.
    private static func rawAdd(_ a: Element, _ b: Element) -> (Element, Bool) {
        var sum = Element(repeating: 0)
        var carry = false
        for limb in 0..<4 {
            let (first, overflowA) = a[limb].addingReportingOverflow(b[limb])
            let (second, overflowB) = first.addingReportingOverflow(carry ? 1 : 0)
            sum[limb] = second
            carry = overflowA || overflowB
        }
        return (sum, carry)
    }

    /// (a + b) mod p, for a and b below p.
    private static func add(_ a: Element, _ b: Element) -> Element {
        let (sum, carried) = rawAdd(a, b)
        // Below 2p: one subtraction of p at most, also when the sum left the four limbs.
        return carried || !isBelowP(sum) ? rawSubtract(sum, p).0 : sum
    }

    /// (a − b) mod p, for a and b below p.
    private static func subtract(_ a: Element, _ b: Element) -> Element {
        let (difference, borrowed) = rawSubtract(a, b)
        return borrowed ? rawAdd(difference, p).0 : difference
    }

    /// a·b·R⁻¹ mod p (Montgomery multiplication, operand scanning), for a and b below p.
    /// For this p, −p⁻¹ mod 2⁶⁴ is 1, so each round's multiple of p is the low limb itself.
    private static func multiply(_ a: Element, _ b: Element) -> Element {
        // t has room for 4 limbs and the carries above them; it stays below 2p between rounds.
        var t = InlineArray<6, UInt64>(repeating: 0)
        for round in 0..<4 {
            var carry: UInt64 = 0
            for limb in 0..<4 {
                let (high, low) = a[limb].multipliedFullWidth(by: b[round])
                let (first, overflowA) = t[limb].addingReportingOverflow(low)
                let (second, overflowB) = first.addingReportingOverflow(carry)
                t[limb] = second
                carry = high &+ (overflowA ? 1 : 0) &+ (overflowB ? 1 : 0)
            }
            let (top, overflowTop) = t[4].addingReportingOverflow(carry)
            t[4] = top
            t[5] = overflowTop ? 1 : 0
            // Add m·p with m = t[0], which clears the low limb, and shift down one limb.
            let m = t[0]
            carry = 0
            for limb in 0..<4 {
                let (high, low) = m.multipliedFullWidth(by: p[limb])
                let (first, overflowA) = t[limb].addingReportingOverflow(low)
                let (second, overflowB) = first.addingReportingOverflow(carry)
                if limb > 0 { t[limb - 1] = second }
                carry = high &+ (overflowA ? 1 : 0) &+ (overflowB ? 1 : 0)
            }
            let (shifted, overflowShifted) = t[4].addingReportingOverflow(carry)
            t[3] = shifted
            t[4] = t[5] &+ (overflowShifted ? 1 : 0)
            t[5] = 0
        }
        var result = Element(repeating: 0)
        for limb in 0..<4 { result[limb] = t[limb] }
        return t[4] != 0 || !isBelowP(result) ? rawSubtract(result, p).0 : result
    }
}
