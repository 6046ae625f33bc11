import Foundation
import Testing
@testable import TensorCore

/// Sizes: 1, odd, not a multiple of 8, and 600,000 (2.4 MB per operand, more than one core's L2).
let kernelSizes = [1, 7, 8, 13, 33, 1000, 600_000]

@Suite struct KernelTests {
    /// exp8 against Foundation's exp: relative error ≤ 4e-7 on the range that does not under- or
    /// overflow, exact 0 and +inf outside it.
    @Test func vectorExpIsAccurate() {
        var worst = 0.0
        var x: Float = -87
        while x < 88 {
            let v = exp8(Vector8(repeating: x))[0]
            worst = max(worst, abs(Double(v) - Foundation.exp(Double(x))) / Foundation.exp(Double(x)))
            x += 0.0137
        }
        #expect(worst < 4e-7)
        #expect(exp8(Vector8(repeating: -1e4))[0] == 0)
        #expect(exp8(Vector8(repeating: -.infinity))[0] == 0)
        #expect(exp8(Vector8(repeating: 1e4))[0] == .infinity)
    }

    /// tanh8 against Foundation's tanh: absolute error ≤ 2e-7 from −20 to 20, across the switch
    /// from the series to the exponential form at ±1/4 and into saturation.
    @Test func vectorTanhIsAccurate() {
        var worst = 0.0
        var x: Float = -20
        while x < 20 {
            worst = max(worst, abs(Double(tanh8(Vector8(repeating: x))[0]) - Foundation.tanh(Double(x))))
            x += 0.000_37
        }
        #expect(worst < 2e-7)
        #expect(tanh8(Vector8(repeating: 100))[0] == 1 && tanh8(Vector8(repeating: -100))[0] == -1)
    }

    @Test(arguments: kernelSizes)
    func elementwiseKernelsMatchScalarFormulas(count: Int) {
        let a = randomArray(count, seed: 21, scale: 8), b = randomArray(count, seed: 22, scale: 8)
        var out = [Float](repeating: 0, count: count)
        func check(_ reference: (Int) -> Double, tolerance: Double) {
            let expected = (0..<count).map(reference)
            #expect(maxScaledError(out, expected) < tolerance)
        }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                out.withUnsafeMutableBufferPointer { op in
                    Elementwise.add(ap.baseAddress!, bp.baseAddress!, into: op.baseAddress!, count: count)
                }
                check({ Double(a[$0]) + Double(b[$0]) }, tolerance: 1e-7)
                out.withUnsafeMutableBufferPointer { op in
                    Elementwise.scale(ap.baseAddress!, by: -0.37, into: op.baseAddress!, count: count)
                }
                check({ Double(a[$0]) * -0.37 }, tolerance: 1e-7)
                out.withUnsafeMutableBufferPointer { op in
                    Elementwise.siluMul(gate: ap.baseAddress!, up: bp.baseAddress!, into: op.baseAddress!, count: count)
                }
                check({ Double(a[$0]) / (1 + Foundation.exp(-Double(a[$0]))) * Double(b[$0]) }, tolerance: 2e-6)
                for (beta, linearBeta) in [(Float(4), Float?(25)), (0.25, 0.2), (1, nil)] {
                    out.withUnsafeMutableBufferPointer { op in
                        Elementwise.situMul(gate: ap.baseAddress!, up: bp.baseAddress!, beta: beta, linearBeta: linearBeta,
                                            into: op.baseAddress!, count: count)
                    }
                    check({
                        let g = Double(a[$0]), u = Double(b[$0]), lb = linearBeta.map(Double.init)
                        return Double(beta) * Foundation.tanh(g / Double(beta)) / (1 + Foundation.exp(-g)) * (lb.map { $0 * Foundation.tanh(u / $0) } ?? u)
                    }, tolerance: 2e-6)
                }
                out.withUnsafeMutableBufferPointer { op in
                    Elementwise.silu(ap.baseAddress!, into: op.baseAddress!, count: count)
                }
                check({ Double(a[$0]) / (1 + Foundation.exp(-Double(a[$0]))) }, tolerance: 1e-6)
                out.withUnsafeMutableBufferPointer { op in
                    Elementwise.sigmoid(ap.baseAddress!, into: op.baseAddress!, count: count)
                }
                check({ 1 / (1 + Foundation.exp(-Double(a[$0]))) }, tolerance: 1e-6)
                out.withUnsafeMutableBufferPointer { op in
                    Elementwise.exp(ap.baseAddress!, into: op.baseAddress!, count: count)
                }
                check({ Foundation.exp(Double(a[$0])) }, tolerance: 1e-6)
                out = b
                out.withUnsafeMutableBufferPointer { op in
                    Elementwise.addScaled(ap.baseAddress!, by: 0.5, into: op.baseAddress!, count: count)
                }
                check({ Double(b[$0]) + 0.5 * Double(a[$0]) }, tolerance: 1e-7)
                let dot = Reduction.dot(ap.baseAddress!, bp.baseAddress!, count: count)
                let exact = (0..<count).reduce(0.0) { $0 + Double(a[$1]) * Double(b[$1]) }
                let magnitude = (0..<count).reduce(0.0) { $0 + abs(Double(a[$1]) * Double(b[$1])) }
                #expect(abs(Double(dot) - exact) <= 1e-6 * magnitude + 1e-6)
            }
        }
    }

    @Test(arguments: kernelSizes)
    func rmsNormMatchesDefinition(count: Int) {
        let x = randomArray(count, seed: 31, scale: 3), w = randomArray(count, seed: 32)
        var out = [Float](repeating: 0, count: count)
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { op in
                    Reduction.rmsNorm(xp.baseAddress!, weight: wp.baseAddress!, epsilon: 1e-6,
                                      into: op.baseAddress!, count: count)
                }
            }
        }
        let meanSquare = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(count)
        let expected = (0..<count).map { Double(x[$0]) / (meanSquare + 1e-6).squareRoot() * Double(w[$0]) }
        #expect(maxScaledError(out, expected) < 2e-6)
        // Without a weight (Llama 4's q/k norm), in place.
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { Reduction.rmsNorm($0.baseAddress!, epsilon: 1e-6, into: $0.baseAddress!, count: count) }
        #expect(maxScaledError(inPlace, (0..<count).map { Double(x[$0]) / (meanSquare + 1e-6).squareRoot() }) < 2e-6)
    }

    func softmaxed(_ row: [Float]) -> [Float] {
        var out = row
        out.withUnsafeMutableBufferPointer { Reduction.softmax($0.baseAddress!, count: row.count) }
        return out
    }

    @Test(arguments: kernelSizes)
    func softmaxMatchesDoublePrecision(count: Int) {
        let x = randomArray(count, seed: 41, scale: 20)
        let m = Double(x.max()!)
        let e = x.map { Foundation.exp(Double($0) - m) }
        let total = e.reduce(0, +)
        #expect(maxScaledError(softmaxed(x), e.map { $0 / total }) < 1e-6)
    }

    @Test func softmaxIsStableForHugeLogitsAndMasks() {
        let out = softmaxed([1e4, -1e4, 0, 1e4, -.infinity, 3, 2, 1, 5])
        #expect(out.allSatisfy { $0.isFinite })
        #expect(abs(out[0] - 0.5) < 1e-6 && abs(out[3] - 0.5) < 1e-6)
        #expect(out[1] == 0 && out[4] == 0)
        #expect(softmaxed([-.infinity, -.infinity, -.infinity]) == [0, 0, 0])
        #expect(abs(softmaxed([-1e4, -1e4 + 1]).reduce(0, +) - 1) < 1e-6)
    }

    /// RoPE against the transformers formulas: rotate_half for the half-split layout, pairs of
    /// neighbours for the interleaved layout; lanes past the rotary dimension untouched.
    @Test(arguments: [RotaryEmbedding.Layout.halfSplit, .interleaved])
    func ropeMatchesReference(layout: RotaryEmbedding.Layout) throws {
        let heads = 3, headDim = 24, rotary = 16, position = 37, base = 10_000.0
        let rope = try RotaryEmbedding(rotaryDimension: rotary, base: base, layout: layout)
        var x = randomArray(heads * headDim, seed: 51)
        let original = x
        x.withUnsafeMutableBufferPointer {
            rope.apply(to: $0.baseAddress!, heads: heads, headStride: headDim, position: position)
        }
        var expected = original.map(Double.init)
        let half = rotary / 2
        for h in 0..<heads {
            for i in 0..<half {
                let angle = Double(position) * Foundation.pow(base, -Double(2 * i) / Double(rotary))
                let (p, q) = layout == .halfSplit ? (h * headDim + i, h * headDim + i + half)
                                                  : (h * headDim + 2 * i, h * headDim + 2 * i + 1)
                let a = Double(original[p]), b = Double(original[q])
                expected[p] = a * Foundation.cos(angle) - b * Foundation.sin(angle)
                expected[q] = b * Foundation.cos(angle) + a * Foundation.sin(angle)
            }
            for i in rotary..<headDim { #expect(x[h * headDim + i] == original[h * headDim + i]) }
        }
        #expect(maxScaledError(x, expected) < 2e-5)
        #expect(throws: TensorError.self) { try RotaryEmbedding(rotaryDimension: 7, base: base, layout: layout) }
    }

    @Test func topKBreaksTiesTowardTheLowerIndex() throws {
        #expect(try TopK.indices(of: [1, 3, 3, 2, 3], k: 2) == [1, 2])
        #expect(try TopK.indices(of: [5, 5, 5, 5], k: 3) == [0, 1, 2])
        #expect(try TopK.indices(of: [.nan, 1, -.infinity], k: 2) == [1, 0])
        #expect(try TopK.indices(of: [0.5], k: 1) == [0])
        #expect(throws: TensorError.self) { try TopK.indices(of: [1, 2], k: 3) }
        #expect(throws: TensorError.self) { try TopK.indices(of: [1, 2], k: 0) }
    }

    @Test(arguments: [(8, 2), (64, 6), (384, 8), (1000, 50)])
    func topKMatchesAStableSort(shape: (Int, Int)) throws {
        let (count, k) = shape
        // Values on a coarse grid so that ties are common.
        let row = randomArray(count, seed: 61).map { ($0 * 16).rounded() }
        let expected = row.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }
            .prefix(k).map(\.offset)
        #expect(try TopK.indices(of: row, k: k) == Array(expected))
    }
}

@Suite struct TensorTests {
    @Test func viewsShareUntilWritten() throws {
        let t = try Tensor(shape: [3, 2], elements: [1, 2, 3, 4, 5, 6])
        var view = try t.rows(1..<3)
        #expect(view.shape == [2, 2] && view.elements == [3, 4, 5, 6])
        view.withUnsafeMutableBufferPointer { $0[0] = 30 }
        #expect(view.elements == [30, 4, 5, 6])
        #expect(t.elements == [1, 2, 3, 4, 5, 6])
        #expect(try t.reshaped([2, 3]).element(at: [1, 0]) == 4)
    }

    @Test func badShapesThrow() throws {
        #expect(throws: TensorError.self) { try Tensor(zeros: [2, -1]) }
        #expect(throws: TensorError.self) { try Tensor(shape: [2, 2], elements: [1, 2, 3]) }
        let t = try Tensor(zeros: [2, 3])
        #expect(throws: TensorError.self) { try t.reshaped([4, 2]) }
        #expect(throws: TensorError.self) { try t.rows(1..<3) }
        #expect(throws: TensorError.self) { try t.element(at: [2, 0]) }
        #expect(throws: TensorError.self) { try Threading.set(0) }
    }
}
