// Vector building blocks shared by the kernels: unaligned loads and stores, a vectorised exp, and
// bf16 widening. Eight Float32 lanes fill one AVX2 register.

public typealias Vector8 = SIMD8<Float>

@inlinable @inline(__always)
func load8(_ pointer: UnsafePointer<Float>) -> Vector8 {
    UnsafeRawPointer(pointer).loadUnaligned(as: Vector8.self)
}

@inlinable @inline(__always)
func store8(_ value: Vector8, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Vector8.self)
}

/// Sixteen bf16 weights stored pair-interleaved (see `BF16Matrix`), widened to Float32: the first
/// eight sit in the low halves of eight 32-bit words, the next eight in the high halves. Widening is
/// then a shift and a mask, which LLVM emits as two AVX2 instructions.
@inlinable @inline(__always)
func loadBF16x16(_ pointer: UnsafePointer<UInt16>) -> (Vector8, Vector8) {
    let words = UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<UInt32>.self)
    let first = unsafeBitCast(words &<< 16, to: Vector8.self)
    let second = unsafeBitCast(words & SIMD8(repeating: 0xFFFF_0000), to: Vector8.self)
    return (first, second)
}

/// e^x on eight lanes, relative error below 2e-7 on [-87, 88]; 0 below -87.3, +inf above 88.7.
///
/// Cody–Waite range reduction x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial for e^r, then
/// 2^n put straight into the exponent bits.
@inlinable @inline(__always)
func exp8(_ x: Vector8) -> Vector8 {
    // Comparisons and blends rather than clamped(…)/rounded(…), which the standard library
    // lowers to per-lane calls for SIMD types.
    var clamped = x
    clamped.replace(with: Vector8(repeating: -87.3), where: x .< -87.3)
    clamped.replace(with: Vector8(repeating: 88.7), where: x .> 88.7)
    // Round to nearest even by adding 1.5·2²³: the integer lands in the low mantissa bits.
    let magic = Vector8(repeating: 12_582_912)
    let shifted = magic.addingProduct(clamped, Vector8(repeating: 1.442_695_04))
    let n = shifted - magic
    let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    // ln2 split into a high part exact in float and a low correction (Cody–Waite).
    var r = clamped.addingProduct(n, Vector8(repeating: -0.693_359_375))
    r = r.addingProduct(n, Vector8(repeating: 2.121_944_4e-4))
    var p = Vector8(repeating: 1.987_569_15e-4)
    p = Vector8(repeating: 1.398_199_95e-3).addingProduct(p, r)
    p = Vector8(repeating: 8.333_451_9e-3).addingProduct(p, r)
    p = Vector8(repeating: 4.166_579_6e-2).addingProduct(p, r)
    p = Vector8(repeating: 0.166_666_66).addingProduct(p, r)
    p = Vector8(repeating: 0.5).addingProduct(p, r)
    p = (r + 1).addingProduct(p, r * r)
    let scale = unsafeBitCast((integer &+ 127) &<< 23, to: Vector8.self)
    var result = p * scale
    result.replace(with: 0, where: x .< -87.3)
    result.replace(with: .infinity, where: x .> 88.7)
    return result
}

/// tanh on eight lanes: 1 − 2/(e^2x + 1), exactly ±1 once e^2x saturates; below |x| = 1/4,
/// where that difference would cancel, its odd Taylor series to x⁹ (the next term, 1382/155925·x¹¹,
/// is under 2e-9 there).
@inlinable @inline(__always)
func tanh8(_ x: Vector8) -> Vector8 {
    var result = 1 - 2 / (exp8(2 * x) + 1)
    let x2 = x * x
    var p = Vector8(repeating: 62.0 / 2835)
    p = Vector8(repeating: -17.0 / 315).addingProduct(p, x2)
    p = Vector8(repeating: 2.0 / 15).addingProduct(p, x2)
    p = Vector8(repeating: -1.0 / 3).addingProduct(p, x2)
    result.replace(with: x.addingProduct(x * x2, p), where: x .> -0.25 .& x .< 0.25)
    return result
}

/// Horizontal sum of the lanes.
@inlinable @inline(__always)
func sum8(_ v: Vector8) -> Float { v.sum() }
