import Foundation
@testable import TensorCore

// Naive scalar references in Double, written for clarity, never for speed.

func randomArray(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in rng.nextSigned() * scale }
}

func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) throws -> Tensor {
    try Tensor(shape: shape, elements: randomArray(shape.reduce(1, *), seed: seed, scale: scale))
}

/// C = op(A)·op(B) by the textbook triple loop.
func naiveMatmul(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool) -> [Double] {
    var c = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let av = transposeA ? a[p * m + i] : a[i * k + p]
                let bv = transposeB ? b[j * k + p] : b[p * n + j]
                s += Double(av) * Double(bv)
            }
            c[i * n + j] = s
        }
    }
    return c
}

/// Largest |x - y| / (1 + |y|): an absolute error for small values, relative for large ones.
func maxScaledError(_ x: [Float], _ y: [Double]) -> Double {
    zip(x, y).map { abs(Double($0) - $1) / (1 + abs($1)) }.max() ?? 0
}

func withPointers<R>(_ a: [Float], _ body: (UnsafePointer<Float>) -> R) -> R {
    a.withUnsafeBufferPointer { body($0.baseAddress!) }
}
