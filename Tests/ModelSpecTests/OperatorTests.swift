import Testing
import TestSupport
@testable import ModelSpec

@Suite struct OperatorTests {
    /// A one-layer Mixtral small enough to price by hand: hidden 8, 2 heads × 4, 1 KV head,
    /// experts 4 × intermediate 6, top-2, vocabulary 10.
    let tiny = #"""
    {"model_type": "mixtral", "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1,
     "intermediate_size": 6, "num_local_experts": 4, "num_experts_per_tok": 2, "num_hidden_layers": 1,
     "vocab_size": 10, "sliding_window": null}
    """#

    @Test func tinyModelDecodeMatchesHandDerivedFLOPs() throws {
        let s = try spec(tiny)
        // Decode one sequence with 3 cached tokens: the new token sees 4 keys.
        let ops = s.operators(step: .decode(sequences: 1, context: 3))
        func flops(_ name: String) -> Double { ops.first { $0.name.hasPrefix(name) }?.flops ?? -1 }
        #expect(flops("attention q/k/v") == 2 * 8 * (8 + 4 + 4))         // 256
        #expect(flops("attention (QK") == 4 * 2 * (4 * 4 + 5))           // 4 keys × 2 heads × (4·d + 5)
        #expect(flops("attention output") == 2 * 8 * 8)                  // 128
        #expect(flops("router") == 2 * 8 * 4)                            // 64
        let routedFLOPs: Double = 2 * 2 * 3 * 8 * 6 + 5 * 2 * 6          // 2 experts × 3 matrices + SwiGLU
        #expect(flops("routed experts") == routedFLOPs)
        #expect(flops("output head") == 2 * 8 * 10)
        // Parameters: q 64 + k 32 + v 32 + o 64, router 32, experts 4 × 144, norms 24, embed/head 160.
        let parameters = 192 + 32 + 576 + 24 + 160
        #expect(s.parameterCounts.total == parameters)
        #expect(s.parameterCounts.active == s.parameterCounts.total - 2 * 144)
        // Decode reads every weight a token touches once: both top-2 experts of one token.
        let routed = ops.first { $0.kind == .groupedMatmul }
        #expect(routed?.weightBytes == 2 * Double(s.bytesPerExpert(.bf16)))
    }

    /// FP8 GEMMs quantize their inputs; which ranks of a tensor-parallel group do it follows from
    /// the GEMM's cut. DeepSeek-V3 (hidden 7,168, q rank 1,536, kv rank 512, 128 heads × 128,
    /// 8 of 256 experts of 2,048, one shared expert of 2,048), decoding 4 tokens per layer:
    /// whole on every rank: the down-projections' 7,168 + 7,168 and the q up-projection's 1,536;
    /// the experts' hidden state once per token (7,168, before dispatch or gather) and the shared
    /// expert's 7,168. In shares: the output projection's 128 × 128, the absorbed kv
    /// up-projection's per-head inputs 128 × (128 + 512) (each head's nope query and latent
    /// output), the experts' 8 × 2,048 intermediates and the shared expert's 2,048. Two FLOPs an
    /// element. The down-projections themselves run whole on every rank (replicated, as SGLang,
    /// vLLM and TensorRT-LLM build them); the up-projections are cut by heads.
    @Test func quantizedInputsFollowTheTensorParallelCut() throws {
        let v3 = try model("deepseek-v3")
        let ops = v3.operators(step: .decode(sequences: 4, context: 100), options: CostOptions(weights: .fp8))
        func inputs(_ block: Operator.Block, whole: Bool) -> Double {
            ops.filter { $0.block == block && $0.layers == 58 && $0.name.hasPrefix("activation quantization")
                && ($0.computeSplit == .replicated) == whole }.reduce(0) { $0 + $1.flops / 2 }
        }
        #expect(inputs(.attention, whole: true) == 4 * (7168 + 7168 + 1536))
        #expect(inputs(.attention, whole: false) == 4 * (128 * 128 + 128 * (128 + 512)))
        #expect(inputs(.moe, whole: true) == 4 * (7168 + 7168))
        #expect(inputs(.moe, whole: false) == 4 * (8 * 2048 + 2048))
        let cut = Dictionary(ops.filter { $0.name.hasPrefix("MLA") && $0.kind == .matmul }.map { ($0.name, $0.computeSplit) }) { a, _ in a }
        #expect(cut["MLA q down-projection"] == .replicated && cut["MLA kv down-projection"] == .replicated)
        #expect(cut["MLA q up-projection"] == .heads && cut["MLA absorbed kv up-projection"] == .heads)
    }

    /// Every operator belongs to one part of the model, and the parts hold what the config says:
    /// in the tiny Mixtral's decode step the MoE part is the router, top-k and the two routed
    /// experts, attention its projections and core, the head the vocabulary projection.
    @Test func operatorsAreTaggedWithTheirPart() throws {
        let s = try spec(tiny)
        let ops = s.operators(step: .decode(sequences: 1, context: 3))
        func flops(_ block: Operator.Block) -> Double { ops.filter { $0.block == block }.reduce(0) { $0 + $1.totalFLOPs } }
        let router: Double = 2 * 8 * 4, topK: Double = 4 * 4, experts: Double = 2 * 2 * 3 * 8 * 6 + 5 * 2 * 6
        let combine: Double = 2 * 2 * 8                                   // k weighted copies summed per value
        #expect(flops(.moe) == router + topK + experts + combine)
        let projections: Double = 2 * 8 * 16 + 2 * 8 * 8, core: Double = 4 * 2 * (4 * 4 + 5)
        #expect(flops(.attention) == projections + core)
        #expect(flops(.head) == 2 * 8 * 10)
        #expect(flops(.mlp) == 0)
        #expect(ops.filter { $0.block == .norm }.allSatisfy { $0.kind == .norm })
        #expect(Operator.Block.allCases.reduce(0) { $0 + flops($1) } == StepCost(ops).flops)
    }

    @Test func causalAndWindowedKeyCounts() {
        // Prefill of 4 tokens from scratch: 1 + 2 + 3 + 4 keys.
        #expect(ModelSpec.attendedKeys(span: .full, context: 0, newTokens: 4) == 10)
        // Window 3: 1 + 2 + 3 + 3.
        #expect(ModelSpec.attendedKeys(span: .slidingWindow(3), context: 0, newTokens: 4) == 9)
        // Decode at context 1000 with window 128: 128 keys.
        #expect(ModelSpec.attendedKeys(span: .slidingWindow(128), context: 1000, newTokens: 1) == 128)
        #expect(ModelSpec.attendedKeys(span: .full, context: 1000, newTokens: 1) == 1001)
    }

    /// The closed form against the sum it replaces, token by token: new token i attends
    /// min(context + i + 1, window) keys.
    @Test func keyCountsMatchTheTokenByTokenSum() {
        let spans: [Layer.Span] = [.full, .slidingWindow(1), .slidingWindow(7), .slidingWindow(4096), .chunked(8192)]
        for span in spans {
            let window: Int? = switch span {
            case .full: nil
            case let .slidingWindow(w), let .chunked(w): w
            case let .compressed(_, w): w
            }
            for context in [0, 1, 5, 6, 4000, 4095, 4096, 100_000] {
                for newTokens in [0, 1, 2, 3, 97, 4096, 9000] {
                    var naive = 0.0
                    for i in 0..<newTokens { naive += Double(min(context + i + 1, window ?? Int.max)) }
                    #expect(ModelSpec.attendedKeys(span: span, context: context, newTokens: newTokens) == naive,
                            "\(span), context \(context), \(newTokens) new tokens")
                }
            }
        }
    }

    /// The rule of thumb every serving paper uses: a decode token costs 2 FLOPs per active
    /// parameter plus attention. Embedding lookups cost no FLOPs, so 2·vocab·hidden is added back;
    /// norms, softmax and SwiGLU keep the rest within 1%.
    @Test(arguments: ["deepseek-v3", "kimi-k2", "qwen3-235b-a22b", "mixtral-8x7b", "gpt-oss-120b", "llama3.1-70b"])
    func decodeCostsTwoFLOPsPerActiveParameterPlusAttention(id: String) throws {
        let s = try preset(id)
        let ops = s.operators(step: .decode(sequences: 1, context: 4096))
        let attention = ops.filter { $0.kind == .attention }.reduce(0) { $0 + $1.totalFLOPs }
        let rest = StepCost(ops).flops - attention + 2 * Double(s.vocabSize * s.hiddenSize)
        let expected = 2 * Double(s.parameterCounts.active)
        #expect(abs(rest - expected) / expected < 0.01, "\(id): \(rest) vs \(expected)")
        #expect(attention > 0)
    }

    @Test func longerContextsCostMoreAttentionNotMoreWeights() throws {
        let s = try preset("kimi-k2")
        let short = StepCost(s.operators(step: .decode(sequences: 8, context: 1024)))
        let long = StepCost(s.operators(step: .decode(sequences: 8, context: 131_072)))
        #expect(long.flops > short.flops && long.kvBytes > 100 * short.kvBytes)
        #expect(long.weightBytes == short.weightBytes)
        // Decode KV traffic is each sequence's cache read once plus the new token written.
        #expect(long.kvBytes == 8 * Double(s.kvCacheBytes(context: 131_073, format: .bf16)) + 8 * Double(s.kvCacheBytesPerToken(.bf16)))
    }

    /// E·(1 − (1 − k/E)^B) against a Monte Carlo of random top-k routing: within 2%.
    @Test(arguments: [(384, 8, 1), (384, 8, 16), (256, 8, 64), (8, 2, 3), (128, 4, 1000)])
    func expectedDistinctExpertsMatchesSimulation(shape: (Int, Int, Int)) {
        let (experts, k, tokens) = shape
        // A fixed-seed generator (SplitMix64), so the check is the same on every run; 4,000 trials
        // put the simulation's own error well under the 2% tolerance.
        struct Seeded: RandomNumberGenerator {
            var state: UInt64
            mutating func next() -> UInt64 {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                return z ^ (z >> 31)
            }
        }
        var rng = Seeded(state: UInt64(experts * 1000 + k * 10 + tokens))
        var total = 0
        let trials = 4000
        for _ in 0..<trials {
            var touched = Set<Int>()
            for _ in 0..<tokens {
                var chosen = Set<Int>()
                while chosen.count < k { chosen.insert(Int.random(in: 0..<experts, using: &rng)) }
                touched.formUnion(chosen)
            }
            total += touched.count
        }
        let simulated = Double(total) / Double(trials)
        let formula = ExpertLoad.expectedDistinctExperts(experts: experts, perToken: k, tokens: tokens)
        #expect(abs(formula - simulated) / simulated < 0.02, "\(formula) vs \(simulated)")
        // Skewed routing concentrates on fewer experts.
        #expect(ExpertLoad.expectedDistinctExperts(experts: experts, perToken: k, tokens: tokens, skew: 1) <= formula + 1e-9)
    }

    @Test func expertLoadLimits() {
        #expect(abs(ExpertLoad.expectedDistinctExperts(experts: 384, perToken: 8, tokens: 1) - 8) < 1e-9)
        #expect(abs(ExpertLoad.expectedDistinctExperts(experts: 384, perToken: 8, tokens: 100_000) - 384) < 1e-6)
        #expect(ExpertLoad.expectedDistinctExperts(experts: 384, perToken: 8, tokens: 0) == 0)
    }
}

/// The per-expert bytes the step model prices, times experts and MoE layers, are the inventory's
/// routed-expert bytes in every format (two computations of one quantity).
@Suite struct ExpertBytesTests {
    @Test(arguments: ["kimi-k2", "deepseek-v3", "mixtral-8x7b", "qwen3-235b-a22b", "gpt-oss-120b", "llama4-maverick"])
    func perExpertBytesAddUpToTheInventory(id: String) throws {
        let spec = try preset(id)
        let moe = try #require(spec.moe)
        for format in [WeightFormat.bf16, .fp8, .nvfp4, .mxfp4, .int4, .int4g32] {
            let total = spec.weightBytes(format) { $0.category == .routedExperts }
            #expect(spec.bytesPerExpert(format) * moe.routedExperts * spec.moeLayerCount == total, "\(id) \(format)")
        }
    }
}
