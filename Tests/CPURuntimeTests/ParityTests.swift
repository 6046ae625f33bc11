import Foundation
import ModelSpec
import TensorCore
import Testing
@testable import CPURuntime

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

struct Expected: Decodable {
    let prompt: [Int]
    let logits: [[Float]]
    let experts: [String: [[Int32]]]
    let greedy: [Int]
    /// DeepSeek-V4's fixture: each greedy decode step's logits, and the prompt's logits after
    /// `split_at` when it runs in two passes through one cache.
    let decode_logits: [[Float]]?
    let split_at: Int?
    let split_logits: [[Float]]?
}

/// The largest |difference| between a tensor's rows and the expected rows.
func worstError(_ logits: Tensor, _ rows: [[Float]]) -> Float {
    logits.withUnsafeBufferPointer { p in
        rows.enumerated().map { i, row in row.enumerated().map { abs(p[i * row.count + $0] - $1) }.max() ?? 0 }.max() ?? 0
    }
}

func loadFixture(_ name: String, format: CPUWeightFormat = .f32,
                 kernels: PanelMatrix.Kernels? = PanelMatrix.Kernels.native) throws -> (CPUModel, Expected) {
    let folder = fixtures.appendingPathComponent(name)
    let spec = try ModelSpec(contentsOf: folder.appendingPathComponent("config.json").path, id: name)
    let model = try CPUModel(spec: spec, source: .folder(SafeTensorsFolder(folder: folder.path)), format: format, kernels: kernels)
    let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: folder.appendingPathComponent("expected.json")))
    return (model, expected)
}

/// The main correctness test of the runtime: tiny random-weight models built and run by
/// HuggingFace transformers (Fixtures/make_fixtures.py), loaded from their safetensors and run
/// here. Logits within 1e-3, the same experts for every token in every MoE layer, and the same
/// greedy continuation through the KV cache. Every matrix layout: panels with each kernel family
/// the CPU runs (AVX-512 and AVX2 on an AVX-512 machine) and row-major (nil: OpenBLAS and the
/// small-batch kernels, the path of other CPUs).
@Suite struct ParityTests {
    static let layouts: [PanelMatrix.Kernels?] = PanelMatrix.Kernels.allCases.filter(\.isSupported) + [nil]

    @Test(arguments: ["mixtral", "qwen3_moe", "deepseek_v3", "qwen3_5_moe", "minimax_m2", "deepseek_v32", "glm_moe_dsa", "gpt_oss", "kimi_linear", "llama4",
                      "deepseek_v4", "qwen3_next", "kimi_k3", "kimi_k25", "glm4_moe", "mimo_v2_flash"], layouts)
    func matchesTransformers(name: String, kernels: PanelMatrix.Kernels?) throws {
        let (model, expected) = try loadFixture(name, kernels: kernels)
        model.recordRouting = true
        var caches = [model.newCache()]
        let logits = try model.forward([expected.prompt], caches: &caches, allLogits: true)
        #expect(logits.shape == [expected.prompt.count, model.spec.vocabSize])
        var worst: Float = 0
        logits.withUnsafeBufferPointer { p in
            for (i, row) in expected.logits.enumerated() {
                for (j, value) in row.enumerated() { worst = max(worst, abs(p[i * row.count + j] - value)) }
            }
        }
        #expect(worst <= 1e-3, "\(name): max |logit error| \(worst)")
        #expect(!expected.experts.isEmpty)
        for (layer, choices) in expected.experts {
            #expect(model.lastRouting[Int(layer) ?? -1] == choices, "\(name) layer \(layer) experts")
        }
        let generated = try model.generate(prompts: [expected.prompt], maxNew: expected.greedy.count)
        #expect(generated == [expected.greedy], "\(name) greedy continuation")
    }

    /// DeepSeek-V4's state across passes against transformers itself: every greedy decode step's
    /// logits (the compressors emitting entries token by token, the window sliding) and the prompt
    /// run in two passes through one cache, split inside a CSA and an HCA window.
    @Test(arguments: layouts)
    func deepSeekV4StateAcrossPassesMatchesTransformers(kernels: PanelMatrix.Kernels?) throws {
        let (model, expected) = try loadFixture("deepseek_v4", kernels: kernels)
        let steps = try #require(expected.decode_logits), at = try #require(expected.split_at)
        var caches = [model.newCache()]
        var logits = try model.forward([expected.prompt], caches: &caches)
        var worst = worstError(logits, [steps[0]])
        for (i, token) in expected.greedy.dropLast().enumerated() {
            try model.decode([token], caches: &caches, into: &logits)
            worst = max(worst, worstError(logits, [steps[i + 1]]))
        }
        #expect(worst <= 1e-3, "decode steps: max |logit error| \(worst)")
        var split = [model.newCache()]
        _ = try model.forward([Array(expected.prompt.prefix(at))], caches: &split)
        let rest = try model.forward([Array(expected.prompt.dropFirst(at))], caches: &split, allLogits: true)
        let splitWorst = worstError(rest, try #require(expected.split_logits))
        #expect(splitWorst <= 1e-3, "two passes: max |logit error| \(splitWorst)")
    }

    /// Several sequences at once give each the same tokens as alone (batched rows, separate caches
    /// and, for Qwen3.5's linear-attention layers, separate recurrent states).
    @Test(arguments: ["qwen3_moe", "qwen3_5_moe", "deepseek_v4", "kimi_k3"])
    func batchedGenerationEqualsSingle(name: String) throws {
        let (model, expected) = try loadFixture(name)
        let other = [9, 8, 7, 6]
        let together = try model.generate(prompts: [expected.prompt, other], maxNew: 5)
        #expect(together[0] == Array(expected.greedy.prefix(5)))
        #expect(together[1] == (try model.generate(prompts: [other], maxNew: 5))[0])
    }

    /// bf16 weights (on x86-64 every matrix in bf16 panels): logits within bf16's rounding
    /// of transformers' Float32 ones, for GQA and MLA attention alike.
    ///
    /// Rounding the weights can flip a discrete choice at a near-tie (an expert, or a key of the
    /// sparse-attention indexer), as it would in transformers in bf16; from the first query whose
    /// choices differ from the Float32 run (which matches transformers exactly, above) the logits
    /// are no longer comparable, so only the queries before it are held to the bound, and at least
    /// half of the prompt must be (of a long prompt, Kimi K3's 80 tokens, its first 5 queries: bf16
    /// flips a near-tie router choice at its query 13, so the chunk-crossing positions are held to
    /// transformers in f32 only, above).
    @Test(arguments: ["mixtral", "qwen3_moe", "deepseek_v3", "qwen3_5_moe", "minimax_m2", "deepseek_v32", "glm_moe_dsa", "gpt_oss", "kimi_linear", "llama4",
                      "deepseek_v4", "qwen3_next", "kimi_k3", "kimi_k25", "glm4_moe", "mimo_v2_flash"], layouts)
    func bf16WeightsStayClose(name: String, kernels: PanelMatrix.Kernels?) throws {
        func run(_ format: CPUWeightFormat) throws -> (CPUModel, Tensor, Expected) {
            let (model, expected) = try loadFixture(name, format: format, kernels: kernels)
            model.recordRouting = true
            var caches = [model.newCache()]
            return (model, try model.forward([expected.prompt], caches: &caches, allLogits: true), expected)
        }
        let (reference, _, _) = try run(.f32)
        let (model, logits, expected) = try run(.bf16)
        var comparable = expected.prompt.count
        for (layer, choices) in reference.lastRouting {
            let mine = model.lastRouting[layer] ?? []
            if let i = choices.indices.first(where: { $0 >= mine.count || mine[$0] != choices[$0] }) { comparable = min(comparable, i) }
        }
        for (layer, choices) in reference.lastIndexerChoice {
            let mine = model.lastIndexerChoice[layer] ?? []
            if let i = choices.indices.first(where: { $0 >= mine.count || mine[$0] != choices[$0] }) { comparable = min(comparable, i) }
        }
        #expect(2 * comparable >= min(expected.prompt.count, 10), "\(name): bf16 changes a discrete choice at query \(comparable)")
        let worst = logits.withUnsafeBufferPointer { p in
            expected.logits.prefix(comparable).enumerated().map { i, row in
                row.enumerated().map { abs(p[i * row.count + $0] - $1) }.max() ?? 0
            }.max() ?? 0
        }
        #expect(worst < 0.05, "\(name): bf16 max |logit error| \(worst) over the first \(comparable) queries")
    }

    /// Every model type the importer reads runs on the CPU: a family added to ModelSpec without
    /// its runtime (and its fixture above) fails here.
    @Test func everyImportedModelTypeRuns() {
        #expect(CPUModel.supportedModelTypes == Set(ModelSpec.supportedModelTypes))
    }

    /// A checkpoint whose config ships quantized experts (Kimi K3's MXFP4, as its release config
    /// says) is refused by name, not as a missing tensor.
    @Test func quantizedCheckpointIsRefusedByName() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("k3-mxfp4-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let fixture = fixtures.appendingPathComponent("kimi_k3")
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: fixture.appendingPathComponent("config.json"))) as? [String: Any])
        var text = try #require(config["text_config"] as? [String: Any])
        text["quantization_config"] = ["quant_method": "compressed-tensors", "format": "mxfp4-pack-quantized",
                                       "config_groups": ["group_0": ["weights": ["num_bits": 4, "group_size": 32, "type": "float"]]],
                                       "ignore": ["re:.*self_attn.*", "re:.*shared_experts.*", "re:.*lm_head.*"]]
        config["text_config"] = text
        try JSONSerialization.data(withJSONObject: config).write(to: folder.appendingPathComponent("config.json"))
        try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent("model.safetensors"),
                                                   withDestinationURL: fixture.appendingPathComponent("model.safetensors"))
        let spec = try ModelSpec(contentsOf: folder.appendingPathComponent("config.json").path, id: "k3-mxfp4")
        do {
            _ = try CPUModel(spec: spec, source: .folder(SafeTensorsFolder(folder: folder.path)))
            Issue.record("an MXFP4 checkpoint was loaded")
        } catch let error as RuntimeError {
            #expect("\(error)".contains("mxfp4") && "\(error)".contains("dequantize"), "\(error)")
        }
    }

    @Test func badInputIsAnError() throws {
        let (model, _) = try loadFixture("mixtral")
        var caches = [model.newCache()]
        #expect(throws: RuntimeError.self) { try model.forward([[5, 128]], caches: &caches) }
        #expect(throws: RuntimeError.self) { try model.forward([[-1]], caches: &caches) }
        #expect(throws: RuntimeError.self) { try model.forward([[]], caches: &caches) }
        #expect(throws: RuntimeError.self) { try SafeTensorsFolder(folder: "/no/such/folder") }
    }
}

/// Consistency of the cache: a prompt longer than one query block, run in one forward pass, gives
/// the same logits at every position as feeding it one token at a time through the decode path.
@Suite struct CacheConsistencyTests {
    @Test(arguments: ["mixtral", "deepseek_v3", "qwen3_5_moe", "deepseek_v32", "glm_moe_dsa", "gpt_oss", "kimi_linear", "llama4", "deepseek_v4",
                      "qwen3_next", "kimi_k3", "glm4_moe", "mimo_v2_flash"])
    func wholePromptEqualsTokenByToken(name: String) throws {
        let (model, _) = try loadFixture(name)
        let prompt = (0..<300).map { ($0 * 37 + 11) % model.spec.vocabSize }
        var whole = [model.newCache()]
        let all = try model.forward([prompt], caches: &whole, allLogits: true)
        var stepwise = [model.newCache()]
        var worst: Float = 0
        for (i, token) in prompt.enumerated() {
            let logits = try model.forward([[token]], caches: &stepwise)
            let v = model.spec.vocabSize
            all.withUnsafeBufferPointer { a in
                logits.withUnsafeBufferPointer { l in
                    for j in 0..<v { worst = max(worst, abs(a[i * v + j] - l[j])) }
                }
            }
        }
        #expect(worst < 1e-3, "\(name): prefill and decode differ by \(worst)")
    }

    /// DeepSeek-V4's compressor state (what each layer keeps between entries) never exceeds the
    /// spec's count, which the planner prices, and reaches it once every window is one token short
    /// (3 tokens here: the CSA windows are 2 tokens, the HCA window 4).
    @Test func compressorStateStaysWithinTheSpec() throws {
        let (model, expected) = try loadFixture("deepseek_v4")
        var caches = [model.newCache()]
        for (i, token) in expected.prompt.enumerated() {
            _ = try model.forward([[token]], caches: &caches)
            for (l, layer) in model.spec.layers.enumerated() {
                let held = caches[0].compressor[l].stateValues + caches[0].indexCompressor[l].stateValues
                let most = model.spec.compressorStateValues(layer)
                #expect(held <= most, "layer \(l) after \(i + 1) tokens: \(held) values, the spec's most \(most)")
                if i + 1 == 3 { #expect(held == most, "layer \(l) after 3 tokens holds \(held) of \(most)") }
            }
        }
    }

    /// A long prompt prefilled in rounds (`prefillRows`, 64 rows for these tiny models) gives the
    /// same last-token logits as the same prompt in one pass, for one sequence and for several of
    /// different lengths (which finish in different rounds).
    @Test(arguments: ["qwen3_moe", "deepseek_v3", "qwen3_5_moe", "kimi_linear", "deepseek_v4", "kimi_k3"])
    func roundsEqualOnePass(name: String) throws {
        let (model, _) = try loadFixture(name)
        #expect(model.prefillRows == 64)
        let v = model.spec.vocabSize
        let prompts = [(0..<150).map { ($0 * 37 + 11) % v }, (0..<40).map { ($0 * 13 + 5) % v }, (0..<97).map { ($0 * 7 + 3) % v }]
        for batch in [Array(prompts.prefix(1)), prompts] {
            var rounds = batch.map { model.newCache(reserve: $0.count) }
            let inRounds = try model.forward(batch, caches: &rounds)
            var whole = batch.map { model.newCache(reserve: $0.count) }
            let onePass = try model.forward(batch, caches: &whole, allLogits: true)
            var worst: Float = 0, row = 0
            inRounds.withUnsafeBufferPointer { r in
                onePass.withUnsafeBufferPointer { o in
                    for (s, prompt) in batch.enumerated() {
                        row += prompt.count
                        for j in 0..<v { worst = max(worst, abs(r[s * v + j] - o[(row - 1) * v + j])) }
                    }
                }
            }
            #expect(worst < 1e-3, "\(name), \(batch.count) sequences: rounds and one pass differ by \(worst)")
            #expect(zip(rounds, whole).allSatisfy { $0.length == $1.length })
        }
    }
}
