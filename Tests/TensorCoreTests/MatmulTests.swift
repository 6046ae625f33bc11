import Testing
@testable import TensorCore

/// GEMM tolerance: f32 accumulation over k terms of |a·b| ≤ 1 errs by about k·2⁻²⁴ relative; 1e-5
/// scaled error is generous for k ≤ 1500 and still catches any wrong index.
@Suite struct MatmulTests {
    /// The last two exceed `BLAS.parallelWork`, so with two or more threads they run as slices: by
    /// columns (257 columns, not a multiple of 16) and by rows (40 columns are too few to split).
    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (1, 17, 9), (7, 13, 5), (33, 65, 17), (8, 31, 64), (64, 40, 129),
                                            (300, 257, 64), (700, 40, 100)]

    @Test(arguments: shapes)
    func gemmMatchesNaiveForEveryTranspose(shape: (Int, Int, Int)) throws {
        let (m, n, k) = shape
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                let a = try randomTensor(transposeA ? [k, m] : [m, k], seed: 1)
                let b = try randomTensor(transposeB ? [n, k] : [k, n], seed: 2)
                let c = try matmul(a, b, transposeA: transposeA, transposeB: transposeB)
                #expect(c.shape == [m, n])
                let reference = naiveMatmul(a.elements, b.elements, m: m, n: n, k: k,
                                            transposeA: transposeA, transposeB: transposeB)
                #expect(maxScaledError(c.elements, reference) < 1e-5)
            }
        }
    }

    @Test func mismatchedShapesThrowNamingBothShapes() throws {
        let a = try Tensor(zeros: [3, 4]), b = try Tensor(zeros: [5, 6])
        #expect(throws: TensorError.self) { try matmul(a, b) }
        do {
            _ = try matmul(a, b)
        } catch {
            #expect("\(error)".contains("[3, 4]") && "\(error)".contains("[5, 6]"))
        }
        #expect(throws: TensorError.self) { try WeightMatrix(f32: b).apply(a) }
        #expect(throws: TensorError.self) { try gemv(a, Tensor(zeros: [5])) }
    }

    /// Weight shapes: batch 1 (GEMV), 2…8 (small batch kernel), 9+ (sgemm); odd widths; and a
    /// 1024 × 1100 matrix (4.5 MB) that does not fit in L2.
    @Test(arguments: [(1, 5, 3), (1, 37, 19), (3, 33, 70), (8, 64, 64), (9, 20, 33), (40, 300, 129), (1, 1024, 1100), (2, 1024, 1100)])
    func linearMatchesNaiveInF32AndBF16(shape: (Int, Int, Int)) throws {
        let (batch, rows, cols) = shape
        let x = try randomTensor([batch, cols], seed: 3)
        let w = try randomTensor([rows, cols], seed: 4)
        let f32 = try WeightMatrix(f32: w).apply(x)
        let reference = naiveMatmul(x.elements, w.elements, m: batch, n: rows, k: cols,
                                    transposeA: false, transposeB: true)
        #expect(f32.shape == [batch, rows])
        #expect(maxScaledError(f32.elements, reference) < 1e-5)

        // bf16: the reference uses the same rounded weights, so only the accumulation order differs.
        let bf16 = try BF16Matrix(w)
        let widened = try bf16.widened()
        let y = try WeightMatrix.bf16(bf16).apply(x)
        let bf16Reference = naiveMatmul(x.elements, widened.elements, m: batch, n: rows, k: cols,
                                        transposeA: false, transposeB: true)
        #expect(maxScaledError(y.elements, bf16Reference) < 1e-5)
        // And bf16 rounding itself stays within its 2⁻⁹ relative step of the f32 weights.
        #expect(maxScaledError(y.elements, reference) < Double(cols) * 4e-3 / 10)
    }

    @Test func gemvOfIdentityIsTheVector() throws {
        var identity = try Tensor(zeros: [9, 9])
        identity.withUnsafeMutableBufferPointer { p in for i in 0..<9 { p[i * 9 + i] = 1 } }
        let x = try randomTensor([9], seed: 5)
        #expect(try gemv(identity, x).elements == x.elements)
    }

    @Test func bf16RoundsToNearestEven() throws {
        #expect(BF16Matrix.round(1.0) == 0x3F80)
        // 0x3F808000 is exactly halfway between 0x3F80 and 0x3F81: ties go to the even 0x3F80.
        #expect(BF16Matrix.round(Float(bitPattern: 0x3F80_8000)) == 0x3F80)
        #expect(BF16Matrix.round(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(BF16Matrix.round(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(BF16Matrix.round(-2.5) == 0xC020)
        #expect(BF16Matrix.widen(BF16Matrix.round(.nan)).isNaN)
        #expect(BF16Matrix.widen(BF16Matrix.round(.infinity)) == .infinity)
    }
}
