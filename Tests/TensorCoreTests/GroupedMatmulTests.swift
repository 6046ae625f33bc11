import Testing
@testable import TensorCore

@Suite struct GroupedMatmulTests {
    /// Random top-k routing without repeats per token; expert 0 never chosen so that an expert
    /// with no tokens is covered.
    func routing(tokens: Int, experts: Int, k: Int, seed: UInt64) throws -> ExpertAssignments {
        var rng = SplitMix64(seed: seed)
        var ids: [Int32] = [], weights: [Float] = []
        for _ in 0..<tokens {
            var chosen = Set<Int32>()
            while chosen.count < k { chosen.insert(Int32(1 + rng.next() % UInt64(experts - 1))) }
            ids += chosen.sorted()
            weights += (0..<k).map { _ in rng.nextSigned() }
        }
        return try ExpertAssignments(tokenCount: tokens, expertsPerToken: k, expertCount: experts,
                                     experts: ids, weights: weights)
    }

    /// The grouped product equals a per-token loop: y[t] = Σⱼ w(t,j) · W_{e(t,j)} x[t].
    @Test(arguments: [(1, 4, 2, 8, 5), (5, 6, 2, 9, 7), (37, 9, 3, 33, 17), (64, 16, 4, 48, 40), (120, 5, 2, 70, 45)])
    func matchesPerTokenLoop(shape: (Int, Int, Int, Int, Int)) throws {
        let (tokens, experts, k, inWidth, outWidth) = shape
        let assignments = try routing(tokens: tokens, experts: experts, k: k, seed: 11)
        let x = try randomTensor([tokens, inWidth], seed: 12)
        let expertTensors = try (0..<experts).map { try randomTensor([outWidth, inWidth], seed: 100 + UInt64($0)) }
        // f32 (OpenBLAS / small-batch kernels), bf16, and f32 and bf16 panels with each panel
        // kernel family the CPU runs (AVX-512, AVX2).
        let families = PanelMatrix.Kernels.allCases.filter(\.isSupported)
        let formats = ["f32", "bf16"] + families.flatMap { ["f32 panels \($0)", "bf16 panels \($0)"] }
        for format in formats {
            let useBF16 = format.hasPrefix("bf16")
            let family = families.first { format.hasSuffix($0.rawValue) }
            let weights = try expertTensors.map {
                if let family { return WeightMatrix.panels(try PanelMatrix($0, element: useBF16 ? .bf16 : .f32, kernels: family)) }
                return useBF16 ? WeightMatrix.bf16(try BF16Matrix($0)) : try WeightMatrix(f32: $0)
            }
            let reference = try expertTensors.map { useBF16 ? try BF16Matrix($0).widened().elements : $0.elements }
            let y = try GroupedMatmul.expertMatmul(x, assignments: assignments, weights: weights)
            var expected = [Double](repeating: 0, count: tokens * outWidth)
            let xs = x.elements
            for t in 0..<tokens {
                for j in 0..<k {
                    let e = Int(assignments.experts[t * k + j]), w = Double(assignments.weights[t * k + j])
                    for o in 0..<outWidth {
                        var s = 0.0
                        for i in 0..<inWidth { s += Double(xs[t * inWidth + i]) * Double(reference[e][o * inWidth + i]) }
                        expected[t * outWidth + o] += w * s
                    }
                }
            }
            #expect(maxScaledError(y.elements, expected) < 1e-5, "\(format)")
        }
    }

    @Test func groupingIsAStableCountingSort() throws {
        let a = try ExpertAssignments(tokenCount: 3, expertsPerToken: 2, expertCount: 4,
                                      experts: [2, 0, 2, 3, 0, 2], weights: [1, 2, 3, 4, 5, 6])
        let g = ExpertGrouping(a)
        #expect(g.offsets == [0, 2, 2, 5, 6])
        #expect(g.tokenOfRow == [0, 2, 0, 1, 2, 1])
        #expect(g.weightOfRow == [2, 5, 1, 3, 6, 4])
        #expect(g.tokensPerExpert == [2, 0, 3, 1])
        // Conservation: every (token, expert) pair appears exactly once.
        #expect(g.tokensPerExpert.reduce(0, +) == 6)
    }

    @Test func badAssignmentsAndWeightsThrow() throws {
        #expect(throws: TensorError.self) {
            try ExpertAssignments(tokenCount: 1, expertsPerToken: 2, expertCount: 4, experts: [0, 4], weights: [1, 1])
        }
        #expect(throws: TensorError.self) {
            try ExpertAssignments(tokenCount: 2, expertsPerToken: 2, expertCount: 4, experts: [0, 1], weights: [1, 1])
        }
        let a = try ExpertAssignments(tokenCount: 1, expertsPerToken: 1, expertCount: 2, experts: [1], weights: [1])
        let x = try Tensor(zeros: [1, 3])
        #expect(throws: TensorError.self) {
            try GroupedMatmul.expertMatmul(x, assignments: a, weights: [try WeightMatrix(f32: try Tensor(zeros: [2, 3]))])
        }
        #expect(throws: TensorError.self) {
            try GroupedMatmul.expertMatmul(x, assignments: a, weights: [
                try WeightMatrix(f32: try Tensor(zeros: [2, 4])), try WeightMatrix(f32: try Tensor(zeros: [2, 4])),
            ])
        }
    }
}

/// Gather and scatter on sizes past the parallel threshold (1,024 rows × 512), against plain
/// loops: threads split rows (gather) and tokens (scatter) without overlapping writes.
@Suite struct GatherScatterTests {
    @Test func largeGatherAndScatterMatchLoops() throws {
        let tokens = 512, k = 2, experts = 16, width = 512
        var rng = SplitMix64(seed: 77)
        let ids = (0..<(tokens * k)).map { _ in Int32(rng.next() % UInt64(experts)) }
        let weights = (0..<(tokens * k)).map { _ in rng.nextSigned() }
        let grouping = ExpertGrouping(try ExpertAssignments(tokenCount: tokens, expertsPerToken: k, expertCount: experts,
                                                            experts: ids, weights: weights))
        let x = randomArray(tokens * width, seed: 78)
        let rows = grouping.rowCount
        var packed = [Float](repeating: 0, count: rows * width)
        x.withUnsafeBufferPointer { xp in
            packed.withUnsafeMutableBufferPointer { GroupedMatmul.gather(xp.baseAddress!, width: width, grouping: grouping, into: $0.baseAddress!) }
        }
        for r in 0..<rows {
            let t = Int(grouping.tokenOfRow[r])
            #expect(Array(packed[(r * width)..<((r + 1) * width)]) == Array(x[(t * width)..<((t + 1) * width)]))
        }
        var y = [Float](repeating: 0, count: tokens * width)
        packed.withUnsafeBufferPointer { pp in
            y.withUnsafeMutableBufferPointer { GroupedMatmul.scatterAdd(pp.baseAddress!, width: width, grouping: grouping, into: $0.baseAddress!) }
        }
        var expected = [Double](repeating: 0, count: tokens * width)
        for r in 0..<rows {
            let t = Int(grouping.tokenOfRow[r]), w = Double(grouping.weightOfRow[r])
            for j in 0..<width { expected[t * width + j] += w * Double(packed[r * width + j]) }
        }
        #expect(maxScaledError(y, expected) < 1e-6)
    }
}
