import Foundation
import ConfigFile
import Testing
import TestSupport
@testable import ModelSpec

/// The formats a checkpoint ships in, read from the real configs, and the bytes they give.
@Suite struct ShippedWeightsTests {
    /// What each release's config says: DeepSeek-V4's FP8 with `expert_dtype` fp4, Kimi K3's
    /// compressed-tensors MXFP4 on the experts only, gpt-oss's mxfp4 method, DeepSeek-V3's FP8
    /// blocks, Qwen3.5 without quantization (bf16), Kimi K2.5's INT4 experts in groups of 32; a
    /// group size moesim has no format for (64) is an error that says so.
    @Test func readFromTheReleasedConfigs() throws {
        let expected: [(String, WeightFormat, WeightFormat)] = [
            ("deepseek-v4-pro", .fp8, .mxfp4), ("deepseek-v4-flash", .fp8, .mxfp4), ("kimi-k3", .bf16, .mxfp4),
            ("gpt-oss-120b", .bf16, .mxfp4), ("deepseek-v3", .fp8, .fp8), ("qwen3.5-397b-a17b", .bf16, .bf16),
            ("kimi-k2.5", .bf16, .int4g32),
        ]
        for (id, dense, experts) in expected {
            let shipped = try #require(try model(id).shippedWeights).get()
            #expect(shipped.dense == dense && shipped.experts == experts, "\(id): \(shipped)")
        }
        let text = try String(contentsOf: root.appendingPathComponent("configs/models/kimi-k2.5.json"), encoding: .utf8)
        let groups64 = text.replacingOccurrences(of: "\"group_size\": 32", with: "\"group_size\": 64")
        #expect(groups64 != text)
        do {
            _ = try ModelSpec(config: JSONObject(data: Data(groups64.utf8), source: "k2.5-g64"), id: "k2.5-g64").asShipped()
            Issue.record("INT4 in groups of 64 was priced")
        } catch let error as ConfigError {
            #expect("\(error)".contains("groups of 64"), "\(error)")
        }
    }

    /// FP8 without `weight_block_size` is scaled per tensor or channel (`fp8-tensor`); 128 × 128
    /// blocks are DeepSeek's `fp8`; another block size is an error that names it.
    @Test func fp8BlocksOrNot() throws {
        let text = try String(contentsOf: root.appendingPathComponent("configs/models/deepseek-v3.json"), encoding: .utf8)
        func shipped(_ config: String) throws -> WeightFormat {
            try ModelSpec(config: JSONObject(data: Data(config.utf8), source: "v3"), id: "v3").asShipped().1
        }
        #expect(try shipped(text) == .fp8)
        let blocks = try #require(text.range(of: #""weight_block_size": \[\s*128,\s*128\s*\]"#, options: .regularExpression))
        var perTensor = text
        perTensor.replaceSubrange(blocks, with: #""weight_block_size": null"#)
        #expect(try shipped(perTensor) == .fp8Tensor)
        var blocks64 = text
        blocks64.replaceSubrange(blocks, with: #""weight_block_size": [64, 64]"#)
        do {
            _ = try shipped(blocks64)
            Issue.record("FP8 in 64 × 64 blocks was priced")
        } catch let error as ConfigError {
            #expect("\(error)".contains("[64, 64]"), "\(error)")
        }
        // A scale per row: 4 bytes a row on top of a byte a value.
        #expect(WeightFormat.fp8Tensor.bytes(rows: 3, cols: 1000) == 3000 + 12)
    }

    /// Kimi K2.5 as shipped: its experts' INT4 with a bf16 scale per 32 values is 4.5 bits a value,
    /// the rest bf16.
    @Test func kimiK25ExpertsAreInt4InGroupsOf32() throws {
        let base = try model("kimi-k2.5")
        let (shipped, dense) = try base.asShipped()
        #expect(dense == .bf16 && shipped.expertWeightFormat == .int4g32)
        let experts = { (t: WeightTensor) in t.category == .routedExperts }
        let int4 = base.weightBytes(.int4g32, where: experts), bf16 = base.weightBytes(.bf16, where: experts)
        #expect(abs(Double(int4) / Double(bf16) - 4.5 / 16) < 1e-4)
        #expect(shipped.weightBytes(.bf16) == base.weightBytes(.bf16) - bf16 + int4)
    }

    /// Priced as shipped, only the routed experts change format: the total is the all-FP8 total
    /// less the experts' FP8 bytes plus their MXFP4 bytes, and the per-expert figure the step
    /// model uses, times the experts of every MoE layer, is exactly the experts' share.
    @Test func expertsAloneChangeFormat() throws {
        let base = try model("deepseek-v4-pro")
        let (shipped, dense) = try base.asShipped()
        #expect(dense == .fp8 && shipped.expertWeightFormat == .mxfp4)
        let experts = { (t: WeightTensor) in t.category == .routedExperts }
        let fp8Experts = base.weightBytes(.fp8, where: experts), fp4Experts = base.weightBytes(.mxfp4, where: experts)
        #expect(shipped.weightBytes(.fp8) == base.weightBytes(.fp8) - fp8Experts + fp4Experts)
        let moe = try #require(shipped.moe)
        #expect(shipped.bytesPerExpert(.fp8) * moe.routedExperts * shipped.moeLayerCount == shipped.weightBytes(.fp8, where: experts))
        // MXFP4 is 4.25 bits a value: the experts take a little over half their FP8 bytes.
        #expect(abs(Double(fp4Experts) / Double(fp8Experts) - 4.25 / 8.03) < 0.01)
    }
}

/// FP4 checkpoints that keep attention in bf16 (`ModelSpec.attentionWeightFormat`): the bytes
/// and the operators of the attention projections only.
@Suite struct AttentionWeightFormatTests {
    /// Memory: exactly the attention matrices change format, counted from the inventory itself.
    @Test func onlyTheAttentionMatricesGrow() throws {
        let plain = try model("deepseek-r1")
        var split = plain
        split.attentionWeightFormat = .bf16
        let attention = plain.weightTensors.filter { $0.category == .attention && $0.quantizable }
        #expect(!attention.isEmpty)
        let grown = attention.reduce(0) { sum, t in
            sum + (WeightFormat.bf16.bytes(rows: t.rows, cols: t.cols) - WeightFormat.nvfp4.bytes(rows: t.rows, cols: t.cols)) * t.copies
        }
        #expect(split.weightBytes(.nvfp4) - plain.weightBytes(.nvfp4) == grown)
        #expect(split.weightBytes(.nvfp4, where: { $0.category != .attention }) == plain.weightBytes(.nvfp4, where: { $0.category != .attention }))
        #expect(split.weightsLabel(.nvfp4) == "nvfp4 weights with bf16 attention")
    }

    /// Memory and step agree on the attention's weights: the bytes a decode step's attention GEMMs
    /// read equal the weight inventory's attention matrices (and the indexer's bf16 head weights),
    /// for MLA alone and with DeepSeek-V3.2's indexer, in one format, with bf16 attention and with
    /// only the query and key-value projections in bf16.
    @Test(arguments: ["deepseek-r1", "deepseek-v3.2"])
    func stepAndMemoryAgreeOnAttentionBytes(id: String) throws {
        for spec in [try model(id), try model(id).withAttentionWeights(.bf16, pricedIn: .nvfp4),
                     try model(id).withAttentionWeights(.bf16, outputQuantized: true, pricedIn: .nvfp4)] {
            let step = StepShape(sequences: 1, newTokens: 1, context: 64, phase: .decode)
            let read = spec.operators(step: step, options: CostOptions(weights: .nvfp4))
                .filter { $0.block == .attention && $0.kind == .matmul }
                .reduce(0.0) { $0 + $1.weightBytes * Double($1.layers) }
            let stored = spec.weightBytes(.nvfp4, where: { $0.category == .attention && ($0.quantizable || $0.name.contains("weights_proj")) })
            #expect(read == Double(stored), "\(id), attention \(spec.attentionWeightsName(.nvfp4)): \(read) read, \(stored) stored")
        }
    }

    /// Operators: every attention GEMM reads bf16 weights (2 bytes a value), runs at the bf16
    /// rate and takes unquantized inputs, in decode and prefill, for every attention kind: MLA
    /// (absorbed and expanded), DeepSeek-V3.2's sparse indexer, DeepSeek-V4's compressed attention
    /// and grouped output, GQA, Qwen3.5's linear attention. GEMMs that were already bf16 keep their
    /// bytes; the MoE and its activation quantization are as before.
    @Test(arguments: ["deepseek-r1", "deepseek-v3.2", "deepseek-v4-flash", "qwen3-235b-a22b", "qwen3.5-397b-a17b"],
          [StepShape.Phase.decode, .prefill])
    func attentionGEMMsRunInBF16(id: String, phase: StepShape.Phase) throws {
        let plain = try model(id)
        let split = plain.withAttentionWeights(.bf16, pricedIn: .nvfp4)
        let step = StepShape(sequences: 4, newTokens: phase == .decode ? 1 : 256, context: 512, phase: phase)
        let options = CostOptions(weights: .nvfp4)
        let before = plain.operators(step: step, options: options), after = split.operators(step: step, options: options)
        let gemms = after.filter { $0.block == .attention && $0.kind == .matmul }
        #expect(gemms.count >= 2)
        var grew = 0
        for op in gemms {
            #expect(op.ownWeights == .bf16 && op.quantizedInputs == 0 && op.wholeQuantizedInputs == 0, "\(id) \(op.name)")
            let old = try #require(before.first { $0.name == op.name && $0.layers == op.layers })
            #expect(op.flops == old.flops)
            let ratio = op.weightBytes / old.weightBytes
            // NVFP4 is 4.5 bits a value with its scales, bf16 16; the indexers' head weights and
            // V4's compressors are bf16 either way.
            let bf16Already = op.name.contains("weights") || op.name.contains("compressor")
            #expect(bf16Already ? ratio == 1 : abs(ratio - 16 / 4.5) < 0.01, "\(id) \(op.name): \(ratio)")
            if !bf16Already { grew += 1 }
        }
        #expect(grew >= 2)
        // No format of its own, or the step's own: the operators are exactly as before.
        #expect(plain.withAttentionWeights(.nvfp4, pricedIn: .nvfp4).operators(step: step, options: options) == before)
        #expect(!after.contains { $0.block == .attention && $0.name.hasPrefix("activation quantization") })
        #expect(after.filter { $0.block == .moe } == before.filter { $0.block == .moe })
        #expect(plain.withAttentionWeights(.bf16, pricedIn: .bf16).attentionWeightFormat == nil)
    }

    /// NVIDIA's v2 split: the attention output projections (listed here by hand for each kind:
    /// `o_proj`, DeepSeek-V4's grouped pair, Gated DeltaNet's `out_proj`, Kimi Delta Attention's
    /// `o_proj`) stay in the model's
    /// format, exactly the operators of the unsplit model (bytes, rate, quantized inputs), while
    /// every other attention GEMM is the bf16 split's, in decode and prefill. Step and memory
    /// agree on the output projections' bytes in both splits, and the split's memory is the bf16
    /// split's less the output projections' growth.
    @Test(arguments: [("deepseek-r1", ["attention output projection"], ["self_attn.o_proj"]),
                      ("deepseek-v3.2", ["attention output projection"], ["self_attn.o_proj"]),
                      ("deepseek-v4-flash", ["V4 grouped output down-projection", "V4 output up-projection"],
                       ["self_attn.o_a_proj (grouped)", "self_attn.o_b_proj"]),
                      ("qwen3-235b-a22b", ["attention output projection"], ["self_attn.o_proj"]),
                      ("qwen3.5-397b-a17b", ["attention output projection", "linear attention output projection"],
                       ["self_attn.o_proj", "linear_attn.out_proj"]),
                      ("kimi-k3", ["attention output projection", "KDA output projection"], ["self_attn.o_proj"])])
    func outputProjectionsStayQuantizedInTheQKVSplit(id: String, outputOperators: [String], outputTensors: [String]) throws {
        let plain = try model(id)
        let bf16 = plain.withAttentionWeights(.bf16, pricedIn: .nvfp4)
        let qkv = plain.withAttentionWeights(.bf16, outputQuantized: true, pricedIn: .nvfp4)
        let options = CostOptions(weights: .nvfp4)
        for phase in [StepShape.Phase.decode, .prefill] {
            let step = StepShape(sequences: 4, newTokens: phase == .decode ? 1 : 256, context: 512, phase: phase)
            let before = plain.operators(step: step, options: options), whole = bf16.operators(step: step, options: options)
            let split = qkv.operators(step: step, options: options)
            for op in split where op.block == .attention && op.kind == .matmul {
                let output = outputOperators.contains(op.name)
                // Layer groups of one kind have distinct layer counts (DeepSeek-V4-Flash: 21 and 20).
                let expected = try #require((output ? before : whole).first { $0.name == op.name && $0.layers == op.layers })
                #expect(op == expected, "\(id) \(phase) \(op.name)")
                #expect(ModelSpec.isAttentionOutput(op.name) == (output && op.name != "V4 grouped output down-projection"), "\(id) \(op.name)")
            }
            #expect(Set(split.filter { $0.block == .attention && outputOperators.contains($0.name) }.map(\.name)) == Set(outputOperators))
        }
        let tensors = plain.weightTensors.filter { $0.category == .attention && $0.isAttentionOutput }
        #expect(Set(tensors.map(\.name)) == Set(outputTensors), "\(id): \(tensors.map(\.name))")
        let decode = StepShape(sequences: 1, newTokens: 1, context: 64, phase: .decode)
        for spec in [bf16, qkv] {
            let read = spec.operators(step: decode, options: options).filter { $0.block == .attention && outputOperators.contains($0.name) }
                .reduce(0.0) { $0 + $1.weightBytes * Double($1.layers) }
            let stored = spec.weightBytes(.nvfp4, where: { $0.category == .attention && $0.isAttentionOutput })
            #expect(read == Double(stored), "\(id) \(spec.attentionWeightsName(.nvfp4)): \(read) read, \(stored) stored")
        }
        let grown = tensors.reduce(0) { sum, t in
            sum + (WeightFormat.bf16.bytes(rows: t.rows, cols: t.cols) - WeightFormat.nvfp4.bytes(rows: t.rows, cols: t.cols)) * t.copies
        }
        #expect(grown > 0 && bf16.weightBytes(.nvfp4) - qkv.weightBytes(.nvfp4) == grown)
        #expect(qkv.attentionWeightsName(.nvfp4) == "bf16-qkv" && bf16.attentionWeightsName(.nvfp4) == "bf16"
                && plain.attentionWeightsName(.nvfp4) == "nvfp4")
        #expect(!plain.withAttentionWeights(.nvfp4, outputQuantized: true, pricedIn: .nvfp4).attentionOutputQuantized)
        // The named splits are these two, and name themselves back; bf16 weights have none.
        #expect(plain.withAttentionWeights(split: .bf16QKV, pricedIn: .nvfp4) == qkv
                && plain.withAttentionWeights(split: .bf16, pricedIn: .nvfp4) == bf16)
        #expect(AttentionWeightSplit.allCases.allSatisfy {
            plain.withAttentionWeights(split: $0, pricedIn: .nvfp4)?.attentionWeightsName(.nvfp4) == $0.rawValue
                && plain.withAttentionWeights(split: $0, pricedIn: .bf16) == nil
        })
    }
}
