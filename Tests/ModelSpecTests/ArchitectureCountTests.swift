import ConfigFile
import Foundation
import Testing
import TestSupport
@testable import ModelSpec

/// Every preset whose config transformers 5.24 can build, against transformers' own count of the
/// same config (`num_parameters()` of the causal LM on the meta device, no MTP, no vision tower:
/// Fixtures/transformers-params.json, copied from ../shared/reference). transformers keeps
/// DeepSeek's e_score_correction_bias as a buffer, so it is left out of its count; moesim counts
/// it as the checkpoint tensor it is (`transformersBuffer`).
@Suite struct ArchitectureCountTests {
    struct Entry: Decodable {
        var model_type: String? = nil
        let total_params: Int
        let active_params: Int
    }

    static let reference: [String: Entry] = {
        let url = root.appendingPathComponent("Tests/ModelSpecTests/Fixtures/transformers-params.json")
        struct File: Decodable { let models: [String: Entry] }
        guard let data = try? Data(contentsOf: url), let file = try? JSONDecoder().decode(File.self, from: data) else { return [:] }
        return file.models
    }()

    @Test(arguments: ["deepseek-v3", "deepseek-r1", "kimi-k2", "deepseek-v3.2", "deepseek-v4-pro", "deepseek-v4-flash", "mimo-v2-flash", "glm-5", "kimi-k2.5", "minimax-m2.5",
                      "qwen3.5-397b-a17b", "qwen3.5-122b-a10b", "qwen3-235b-a22b", "qwen3-30b-a3b", "qwen3-coder-480b-a35b",
                      "mixtral-8x7b", "mixtral-8x22b", "llama4-maverick", "llama4-scout", "gpt-oss-120b", "gpt-oss-20b",
                      "llama3.1-70b", "llama3.1-405b", "llama2-70b"])
    func countsEqualTransformers(_ id: String) throws {
        let entry = try #require(Self.reference[id], "\(id) has no transformers count")
        let spec = try model(id)
        #expect(spec.modelType == entry.model_type)
        let buffers = spec.weightTensors.filter { $0.transformersBuffer && $0.category != .mtp }.reduce(0) { $0 + $1.parameters }
        #expect(spec.transformersParameterCount == entry.total_params, "\(id): total \(spec.transformersParameterCount)")
        #expect(spec.parameterCounts.active - buffers == entry.active_params, "\(id): active \(spec.parameterCounts.active - buffers)")
    }

    /// The model types no released config above covers (dense Qwen3, Qwen2-MoE, GLM-4.5's
    /// glm4_moe, Qwen3-Next, Qwen3.5's text-only config, Kimi Linear, Llama 4's text-only
    /// config), as tiny configs saved and counted by transformers 5.24 itself
    /// (Fixtures/make_count_fixtures.py): the total and the active count equal.
    @Test(arguments: ["qwen3", "qwen2_moe", "glm4_moe", "qwen3_next", "qwen3_5_moe_text", "kimi_linear", "llama4_text"])
    func tinyConfigsCountAsTransformers(_ type: String) throws {
        let folder = root.appendingPathComponent("Tests/ModelSpecTests/Fixtures/tiny")
        struct File: Decodable { let models: [String: Entry] }
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: folder.appendingPathComponent("counts.json")))
        let entry = try #require(file.models[type])
        let spec = try ModelSpec(contentsOf: folder.appendingPathComponent("\(type)/config.json").path, id: type)
        #expect(spec.modelType == type)
        let buffers = spec.weightTensors.filter { $0.transformersBuffer && $0.category != .mtp }.reduce(0) { $0 + $1.parameters }
        #expect(spec.transformersParameterCount == entry.total_params, "\(type): total \(spec.transformersParameterCount)")
        #expect(spec.parameterCounts.active - buffers == entry.active_params, "\(type): active \(spec.parameterCounts.active - buffers)")
    }

    /// Kimi K3 is not in transformers 5.24: 2,779,484,393,568 by the formula derived from its
    /// public SGLang model file (KDA, MLA with an output gate, LatentMoE, attention residuals; the
    /// selection-bias buffers apart), which Moonshot rounds to "2.8T".
    @Test func kimiK3MatchesTheVendorTotal() throws {
        let spec = try model("kimi-k3")
        #expect(spec.transformersParameterCount == 2_779_484_393_568, "\(spec.transformersParameterCount)")
        #expect(spec.parameterCounts.total >= 2_750_000_000_000 && spec.parameterCounts.total < 2_850_000_000_000)
    }

    /// What Kimi K3's config turns on beyond Kimi Linear, as SGLang's model file reads it: SiTU with
    /// widths 4 and 25, the full-rank KDA output gate and the forget gate bounded at −5, MLA's output
    /// gate, LatentMoE at 3,584 with its norm, a block snapshot every 12 layers, and the language
    /// model's tensors under `language_model.` with the experts in `block_sparse_moe` as w1/w3/w2.
    @Test func kimiK3ReadsItsAdditions() throws {
        let k3 = try model("kimi-k3")
        #expect(k3.activation == .situ(beta: 4, linearBeta: 25))
        #expect(k3.linearAttention?.fullRankOutputGate == true && k3.linearAttention?.forgetGateLowerBound == -5)
        if case let .latent(a) = k3.attention { #expect(a.outputGate) } else { Issue.record("K3's full layers are not MLA") }
        #expect(k3.moe?.latentSize == 3_584 && k3.moe?.latentNorm == true)
        #expect(k3.attentionResidualBlock == 12)
        #expect(k3.checkpointNames.prefix == "language_model." && k3.checkpointNames.moeBlock == "block_sparse_moe"
            && k3.checkpointNames.denseBlock == "mlp" && k3.checkpointNames.expertProjections.gate == "w1")
        // Kimi Linear keeps SiLU, the unbounded gate and no attention residuals.
        let linear = try ModelSpec(config: JSONObject(values: ["model_type": "kimi_linear"], source: "kimi_linear.json"), id: "kimi-linear")
        #expect(linear.activation == .silu && linear.linearAttention?.forgetGateLowerBound == nil && linear.attentionResidualBlock == nil)
        #expect(linear.checkpointNames.prefix == "" && linear.checkpointNames.denseBlock == "block_sparse_moe")
    }

    /// Kimi K3's attention-residual mix prices the rows a bank of snapshots actually holds,
    /// simulated here step by step for several block sizes (K3's: a snapshot at layers 0, 12, …, 84; before each attention and
    /// each feed-forward block the bank and the partial sum are mixed; the head mixes all 8 and
    /// the partial sum): 6 · hidden FLOPs per mixed row per token.
    @Test func kimiK3AttentionResidualMixCountsTheBank() throws {
        for block in [12, 1, 5, 93, 200] {
            let k3 = try model("kimi-k3", overrides: [("attn_res_block_size", String(block))])
            var banked = 0, mixed = 0
            for layer in 0..<k3.layerCount {
                mixed += banked + 1
                if layer % block == 0 { banked += 1 }
                mixed += banked + 1
            }
            mixed += banked + 1
            if block == 12 { #expect(banked == 8) }
            let mix = try #require(k3.operators(step: .decode(sequences: 3, context: 100)).first { $0.name == "attention residual mix" })
            #expect(mix.totalFLOPs == 6 * 3 * Double(k3.hiddenSize * mixed), "block \(block)")
        }
        #expect(try model("kimi-k2").operators(step: .decode(sequences: 3, context: 100)).allSatisfy { $0.name != "attention residual mix" })
    }

    /// DeepSeek-V4's hyper-connection mix reads its mapping weights (hc_fn, fp32) once a step: the
    /// inventory's hyper-connection parameters, which count exactly against transformers, less the
    /// biases and the three scales of each map. Its FLOPs are two per weight per token (the
    /// mapping matmul) plus the norm, the collapse and the stream update, about 30% more with 4 streams.
    @Test func deepSeekV4HyperConnectionMixReadsTheMaps() throws {
        let v4 = try model("deepseek-v4-flash")
        let n = try #require(v4.hyperConnections?.streams)
        let maps = v4.weightTensors.filter { $0.name.hasPrefix("hyper-connections") || $0.name == "hc_head" }
        #expect(maps.count == 2)
        let biasesAndScales = v4.layerCount * 2 * ((2 + n) * n + 3) + n + 1
        let mapWeights = maps.reduce(0) { $0 + $1.parameters } - biasesAndScales
        let tokens = 5.0
        let mix = try #require(v4.operators(step: .decode(sequences: 5, context: 64)).first { $0.name == "hyper-connection mix" })
        #expect(mix.weightBytes == 4 * Double(mapWeights))
        #expect(mix.totalFLOPs > 2 * tokens * Double(mapWeights) && mix.totalFLOPs < 1.35 * 2 * tokens * Double(mapWeights))
        #expect(try model("kimi-k3").operators(step: .decode(sequences: 5, context: 64)).allSatisfy { $0.name != "hyper-connection mix" })
    }

    /// What each new layer kind keeps per sequence: Qwen3.5-397B's 45 Gated DeltaNet layers hold
    /// 64 × 128 × 128 fp32 state values and 3 conv columns of 12,288 bf16 channels each (192,061,440
    /// B whatever the length) and its 15 gated-attention layers 2 × 2 × 256 bf16 values per token;
    /// DeepSeek-V3.2 caches MLA's 576 values and the indexer's 128 per token and layer.
    @Test func stateAndCachePerSequence() throws {
        let qwen = try model("qwen3.5-397b-a17b")
        #expect(qwen.linearLayerCount == 45 && qwen.attentionLayerCount == 15)
        #expect(qwen.stateBytesPerSequence == 45 * (64 * 128 * 128 * 4 + 12_288 * 3 * 2))
        #expect(qwen.kvCacheBytes(context: 262_144, format: .bf16) == 192_061_440 + 15 * 2 * 2 * 256 * 2 * 262_144)
        let v32 = try model("deepseek-v3.2")
        #expect(v32.kvCacheBytesPerToken(.bf16) == 61 * (576 + 128) * 2)
        let k3 = try model("kimi-k3")
        #expect(k3.linearLayerCount == 69 && k3.attentionLayerCount == 24)
        // DeepSeek-V4-Pro: 30 CSA layers (window of 128 entries of 512 values, one entry and one
        // 128-value indexer key per 4 tokens) and 31 HCA layers (one entry per 128 tokens).
        let v4 = try model("deepseek-v4-pro")
        let l = 1_048_576
        let expected = 30 * (128 * 512 + l / 4 * (512 + 128)) + 31 * (128 * 512 + l / 128 * 512)
        // Plus the compressors' state (transformers' DeepseekV4CSACache / HCACache), in bf16: a CSA
        // layer holds 3 pending tokens of kv and gate at 2 × 512 and the last window's first halves
        // (4 × 512 of each), and its indexer's the same at 128; an HCA layer 127 pending tokens of
        // kv and gate at 512.
        let csaState = (2 * 1_024 * 3 + 2 * 4 * 512) + (2 * 256 * 3 + 2 * 4 * 128), hcaState = 2 * 512 * 127
        #expect(v4.stateBytesPerSequence == 2 * (30 * csaState + 31 * hcaState))
        #expect(v4.kvCacheBytes(context: l, format: .bf16) == 2 * expected + v4.stateBytesPerSequence)
    }

    /// A linear-attention state past 2^36 bytes a sequence is refused by its own check (the model
    /// itself stays under the parameter limit: about 10^13 parameters).
    @Test func hugeLinearStateIsRefused() throws {
        do {
            _ = try model("qwen3.5-122b-a10b", overrides: [("linear_key_head_dim", "1048576"), ("linear_value_head_dim", "1048576")])
            Issue.record("a 2^48-byte state was accepted")
        } catch {
            #expect("\(error)".contains("linear-attention state"), "\(error)")
        }
    }

    /// GLM-5's shared-indexer layers and Kimi's layer lists read as transformers reads them.
    @Test func layerListsFollowTransformers() throws {
        let shared = try model("glm-5", overrides: [("index_topk_freq", "2")])
        // max(i − 2 + 1, 0) % 2 == 0: layers 0 and 1 (before the offset), then 3, 5, …
        #expect(shared.layers.prefix(6).map(\.indexer) == [true, true, false, true, false, true])
        let types = (0..<78).map { $0 % 3 == 0 ? "\"shared\"" : "\"full\"" }.joined(separator: ",")
        let listed = try model("glm-5", overrides: [("indexer_types", "[\(types)]")])
        #expect(listed.layers.filter(\.indexer).count == 52)
        #expect(listed.kvCacheBytesPerToken(.bf16) == 78 * 576 * 2 + 52 * 128 * 2)
    }
}
