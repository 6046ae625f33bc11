import Foundation
import Testing
import TestSupport
@testable import ModelSpec

/// The cost of the new attention kinds against counts done by hand or by brute force.
@Suite struct AttentionKindTests {
    /// Σ over positions of the compressed entries a query can see, against a loop.
    @Test(arguments: [(0, 9, 4, nil), (0, 9, 4, 1), (5, 9, 4, nil), (0, 1_000, 128, nil), (100, 5_000, 4, 512), (3, 3, 4, nil)]
          as [(Int, Int, Int, Int?)])
    func entriesSeenMatchesAScan(from: Int, to: Int, ratio: Int, cap: Int?) {
        var scan = 0.0
        for p in stride(from: from + 1, through: to, by: 1) { scan += Double(min(p / ratio, cap ?? Int.max)) }
        #expect(ModelSpec.entriesSeen(from: from, to: to, ratio: ratio, cap: cap) == scan)
    }

    /// Sparse attention reads the top-k tokens in decode: at 100,000 tokens of context a decode
    /// step of DeepSeek-V3.2 reads 2,048 latents per layer (and all index keys), V3 all 100,000.
    @Test func sparseDecodeReadsTheTopK() throws {
        let step = StepShape.decode(sequences: 1, context: 100_000)
        func attentionBytes(_ id: String) throws -> (core: Double, indexer: Double) {
            let ops = try model(id).operators(step: step)
            let core = ops.filter { $0.kind == .attention && !$0.name.contains("indexer") }.reduce(0) { $0 + $1.kvBytes * Double($1.layers) }
            let indexer = ops.filter { $0.name.contains("indexer scoring") }.reduce(0) { $0 + $1.kvBytes * Double($1.layers) }
            return (core, indexer)
        }
        let sparse = try attentionBytes("deepseek-v3.2"), dense = try attentionBytes("deepseek-v3")
        // 61 layers × (2,048 read + 1 written) × 576 values × 2 bytes; the indexer reads all
        // 100,001 keys and writes one, 128 values each; dense MLA reads all 100,001 latents and writes one.
        #expect(sparse.core == 61 * 2_049 * 576 * 2)
        #expect(sparse.indexer == 61 * (100_001 + 1) * 128 * 2)
        #expect(dense.core == 61 * 100_002 * 576 * 2)
    }

    /// A linear-attention layer's decode step reads and writes its whole state, whatever the
    /// context: Qwen3.5-397B at 1,000 and at 100,000 tokens moves the same recurrent bytes.
    @Test func linearStateTrafficIsConstant() throws {
        let spec = try model("qwen3.5-397b-a17b")
        func recurrence(_ context: Int) -> Double {
            spec.operators(step: .decode(sequences: 1, context: context)).filter { $0.name.contains("recurrence") }
                .reduce(0) { $0 + $1.kvBytes * Double($1.layers) }
        }
        #expect(recurrence(1_000) == recurrence(100_000))
        #expect(recurrence(1_000) == 45 * 2 * Double(spec.linearAttention?.bytesPerSequence ?? 0))
    }
}
