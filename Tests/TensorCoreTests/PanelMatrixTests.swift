import Testing
@testable import TensorCore

/// The panel kernels, AVX-512 and AVX2 alike (each where the CPU runs it), against the naive
/// product. Skipped (not passed) on a CPU with neither (aarch64), where the runtime never builds
/// a `PanelMatrix`.
@Suite(.enabled(if: PanelMatrix.isSupported, "needs AVX2 or AVX-512"))
struct PanelMatrixTests {
    /// (batch, rows, cols): one row; rows below, at and above a 32-wide panel; 4–7 rows (the 4-row
    /// kernel, then one-row calls); batches that leave 1, 2 and 3+ rows after the 8-row blocks (the
    /// last of which re-runs an 8-row block); odd
    /// widths; cols = 2048, where x goes in 32-row blocks and the 50 rows take two passes (and the
    /// AVX2 kernels' k blocks of 128 end mid-way: 300 is 2 × 128 + 44).
    @Test(arguments: [(1, 1, 1), (1, 37, 19), (3, 33, 17), (4, 64, 100), (7, 70, 33), (8, 32, 64), (9, 64, 9),
                      (10, 40, 31), (13, 70, 100), (21, 96, 129), (6, 40, 300), (50, 65, 2048)],
          PanelMatrix.Kernels.allCases.filter(\.isSupported))
    func productMatchesNaive(shape: (Int, Int, Int), kernels: PanelMatrix.Kernels) throws {
        let (batch, rows, cols) = shape
        let x = try randomTensor([batch, cols], seed: 21)
        let w = try randomTensor([rows, cols], seed: 22)
        // Each output is one running Float32 sum over k (no blocked partial sums as in sgemm), so
        // its rounding error grows with k: the classic bound is k·2⁻²⁴ of Σ|x·w|.
        let tolerance = max(1e-5, Double(cols) * 6e-8)
        for element in [PanelMatrix.Element.f32, .bf16] {
            let panels = try PanelMatrix(w, element: element, kernels: kernels)
            #expect(panels.kernels == kernels)
            #expect(panels.byteCount == (rows + 31) / 32 * 32 * cols * (element == .f32 ? 4 : 2))
            // The layout round-trips: f32 exactly, bf16 to the same rounding as BF16Matrix.
            let weights = element == .f32 ? w : try BF16Matrix(w).widened()
            #expect(try panels.widened().elements == weights.elements)
            let reference = naiveMatmul(x.elements, weights.elements, m: batch, n: rows, k: cols, transposeA: false, transposeB: true)
            for parallel in [true, false] {
                var y = try Tensor(shape: [batch, rows]) { .nan }  // every element must be written
                x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { yb in
                        guard let xp = xb.baseAddress, let yp = yb.baseAddress else { return }
                        panels.apply(xp, batch: batch, into: yp, parallel: parallel)
                    }
                }
                #expect(maxScaledError(y.elements, reference) < tolerance, "\(element), parallel \(parallel)")
            }
            // Through WeightMatrix, as the runtime calls it.
            #expect(maxScaledError(try WeightMatrix.panels(panels).apply(x).elements, reference) < tolerance)
        }
    }

    @Test func rankOtherThanTwoThrows() throws {
        #expect(throws: TensorError.self) { try PanelMatrix(try Tensor(zeros: [4])) }
    }
}
