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

/// Eight bf16 values widened to Float32: bf16 is the top half of a Float32, so widening is a
/// zero-extend and a 16-bit shift.
@inlinable @inline(__always)
func loadBF16x8(_ pointer: UnsafePointer<UInt16>) -> Vector8 {
    let raw = UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<UInt16>.self)
    let wide = SIMD8<UInt32>(truncatingIfNeeded: raw) &<< 16
    return unsafeBitCast(wide, to: Vector8.self)
}

/// e^x on eight lanes, relative error below 2e-7 on [-87, 88]; 0 below -87.3, +inf above 88.7.
///
/// Cody–Waite range reduction x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial for e^r, then
/// 2^n put straight into the exponent bits.
@inlinable @inline(__always)
func exp8(_ x: Vector8) -> Vector8 {
    let clamped = x.clamped(lowerBound: Vector8(repeating: -87.3), upperBound: Vector8(repeating: 88.7))
    let n = (clamped * 1.442_695_04).rounded(.toNearestOrEven)
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
    let exponent = (SIMD8<Int32>(n) &+ 127) &<< 23
    let scale = unsafeBitCast(exponent, to: Vector8.self)
    var result = p * scale
    result.replace(with: 0, where: x .< -87.3)
    result.replace(with: .infinity, where: x .> 88.7)
    return result
}

/// Horizontal sum of the lanes.
@inlinable @inline(__always)
func sum8(_ v: Vector8) -> Float { v.sum() }
