import ConfigFile
import Foundation
import Testing
import TestSupport
@testable import ModelSpec

func spec(_ json: String, overrides: [(String, String)] = []) throws -> ModelSpec {
    try ModelSpec(config: JSONObject(data: Data(json.utf8), source: "test.json"), id: "test", overrides: overrides)
}

/// The error a config produces, as printed.
func importError(_ json: String, overrides: [(String, String)] = []) -> String {
    do {
        _ = try spec(json, overrides: overrides)
        return "no error"
    } catch {
        return "\(error)"
    }
}

@Suite struct ConfigImportTests {
    @Test func everyPresetLoadsWithItsArchitecture() throws {
        let expected: [String: (String, Bool)] = [
            "kimi-k2": ("MLA", true), "deepseek-v3": ("MLA", true), "qwen3-235b-a22b": ("GQA", true),
            "mixtral-8x7b": ("GQA", true), "llama4-maverick": ("GQA", true), "gpt-oss-120b": ("GQA", true),
            "llama2-70b": ("GQA", false), "llama3.1-405b": ("GQA", false), "qwen3-max-1t": ("GQA", true),
        ]
        for (id, (attention, isMoE)) in expected {
            let s = try preset(id)
            #expect(s.attention.name == attention, "\(id)")
            #expect((s.moe != nil) == isMoE, "\(id)")
        }
    }

    @Test func architectureDetailsFollowTheReferenceImplementations() throws {
        let dsv3 = try preset("deepseek-v3")
        #expect(dsv3.layers.prefix(3).allSatisfy { !$0.isMoE } && dsv3.moeLayerCount == 58)
        #expect(dsv3.moe?.scoring == .sigmoid && dsv3.moe?.correctionBias == true)
        #expect(dsv3.moe?.groups == 8 && dsv3.moe?.topKGroups == 4 && dsv3.moe?.routedScalingFactor == 2.5)
        #expect(dsv3.mtpModules == 1)
        if case .yarn(let factor, let original, _, _, _, _, _, _) = dsv3.rope.scaling {
            #expect(factor == 40 && original == 4096)
        } else {
            Issue.record("DeepSeek-V3 uses YaRN")
        }
        let maverick = try preset("llama4-maverick")
        #expect(maverick.moeLayerCount == 24 && !maverick.layers[0].isMoE && maverick.layers[1].isMoE)
        #expect(maverick.layers[3].span == .full && !maverick.layers[3].usesRoPE)
        #expect(maverick.layers[0].span == .chunked(8192))
        let oss = try preset("gpt-oss-20b")
        #expect(oss.layers[0].span == .slidingWindow(128) && oss.layers[1].span == .full)
        if case let .grouped(a) = oss.attention { #expect(a.sinks && a.qkvBias && a.outputBias) }
        let llama = try preset("llama3.1-405b")
        if case .llama3(let factor, _, _, _) = llama.rope.scaling { #expect(factor == 8) } else {
            Issue.record("Llama 3.1 uses llama3 rope scaling")
        }
    }

    /// Absent fields take transformers' defaults; null means None.
    @Test func defaultsFillAbsentFields() throws {
        let s = try spec(#"{"model_type": "mixtral", "sliding_window": null}"#)
        #expect(s.hiddenSize == 4096 && s.layerCount == 32 && s.moe?.routedExperts == 8 && s.moe?.expertsPerToken == 2)
        #expect(s.layers.allSatisfy { $0.span == .full })
        let llama = try spec(#"{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4}"#)
        if case let .grouped(a) = llama.attention { #expect(a.kvHeads == 4 && a.headDim == 16) }
    }

    /// transformers 5 saves Qwen3-MoE's expert count as num_local_experts.
    @Test func newerFieldNamesAreRead() throws {
        let s = try spec(#"{"model_type": "qwen3_moe", "num_local_experts": 8, "num_experts_per_tok": 2}"#)
        #expect(s.moe?.routedExperts == 8)
        let both = try spec(#"{"model_type": "qwen3_moe", "num_local_experts": 8, "num_experts": 16}"#)
        #expect(both.moe?.routedExperts == 16)
    }

    /// Llama 4's layer lists as transformers reads them: an empty no_rope_layers (Meta's Scout
    /// config) is the default, Meta's numeric attn_temperature_tuning means on, layer_types (as
    /// transformers 5 saves them) decide the chunked layers.
    @Test func llama4LayerListsFollowTransformers() throws {
        let base = #""model_type": "llama4_text", "num_hidden_layers": 4, "no_rope_layer_interval": 2"#
        let meta = try spec("{\(base), \"no_rope_layers\": [], \"attn_temperature_tuning\": 4}")
        #expect(meta.layers.map(\.usesRoPE) == [true, false, true, false])
        if case let .grouped(a) = meta.attention { #expect(a.temperature != nil && a.qkL2Norm) }
        let listed = try spec("{\(base), \"layer_types\": [\"full_attention\", \"full_attention\", \"chunked_attention\", \"full_attention\"]}")
        #expect(listed.layers.map(\.span) == [.full, .full, .chunked(8192), .full])
        let off = try spec("{\(base), \"attn_temperature_tuning\": false, \"attention_chunk_size\": null}")
        if case let .grouped(a) = off.attention { #expect(a.temperature == nil) }
        #expect(off.layers.allSatisfy { $0.span == .full })
        #expect(importError("{\(base), \"no_rope_layers\": [1, 0]}").contains("no_rope_layers"))
    }

    /// YaRN's original context as transformers takes it: the config's own field first, then the
    /// rope parameters', then max_position_embeddings.
    @Test func yarnOriginalContextFallsBack() throws {
        func original(_ json: String) throws -> Int? {
            if case let .yarn(_, context, _, _, _, _, _, _) = try spec(json).rope.scaling { return context }
            return nil
        }
        let yarn = #""rope_scaling": {"type": "yarn", "factor": 4.0}"#
        #expect(try original("{\"model_type\": \"qwen3_moe\", \"max_position_embeddings\": 32768, \(yarn)}") == 32768)
        #expect(try original("{\"model_type\": \"qwen3_moe\", \"original_max_position_embeddings\": 8192, \(yarn)}") == 8192)
    }

    @Test func newerRopeParametersAreRead() throws {
        let s = try spec(#"{"model_type": "llama", "rope_parameters": {"rope_type": "linear", "factor": 4.0, "rope_theta": 500000.0}}"#)
        #expect(s.rope.theta == 500_000 && s.rope.scaling == .linear(factor: 4))
        // Linear divides every frequency by the factor; dynamic NTK leaves them until the
        // trained context is passed.
        let plain = RoPE(theta: 500_000, scaling: .none, rotaryDimension: s.rope.rotaryDimension).frequencies.inverse
        #expect(zip(s.rope.frequencies.inverse, plain).allSatisfy { abs($0 * 4 / $1 - 1) < 1e-12 })
        let dynamic = try spec(#"{"model_type": "llama", "rope_parameters": {"rope_type": "dynamic", "factor": 4.0, "rope_theta": 500000.0}}"#)
        #expect(dynamic.rope.scaling == .dynamic(factor: 4) && dynamic.rope.frequencies.inverse == plain)
    }

    /// A what-if that sets a field to the value it already has is no mistake, wherever the value
    /// comes from (under text_config here), and one that repairs an invalid file is used.
    @Test func overridesToTheSameValueOrRepairingAFileAreAccepted() throws {
        let nested = try spec(#"{"model_type": "llama4", "text_config": {"num_hidden_layers": 4}}"#, overrides: [("num_hidden_layers", "4")])
        #expect(nested.layerCount == 4)
        let byDefault = try spec(#"{"model_type": "llama4", "text_config": {"num_hidden_layers": 4}}"#, overrides: [("num_local_experts", "16")])
        #expect(byDefault.moe?.routedExperts == 16)
        let repaired = try spec(#"{"model_type": "qwen3_moe", "num_experts_per_tok": 0}"#, overrides: [("num_experts_per_tok", "2")])
        #expect(repaired.moe?.expertsPerToken == 2)
    }

    @Test func overridesAreAppliedValidatedAndRecorded() throws {
        let base = try preset("kimi-k2")
        let wider = try preset("kimi-k2", overrides: [("n_routed_experts", "512"), ("num_experts_per_tok", "12")])
        #expect(wider.moe?.routedExperts == 512 && wider.moe?.expertsPerToken == 12)
        #expect(wider.overrides == ["n_routed_experts": "512", "num_experts_per_tok": "12"])
        #expect(wider.parameterCounts.total > base.parameterCounts.total)
        // Each extra expert adds, per MoE layer, its own weights, one router row and one
        // correction-bias entry.
        #expect(wider.parameterCounts.total - base.parameterCounts.total
            == 128 * base.moeLayerCount * (base.parametersPerExpert + base.hiddenSize + 1))
        #expect(importError(#"{"model_type": "mixtral"}"#, overrides: [("num_experts_per_tok", "9")]).contains("num_experts_per_tok"))
        #expect(importError(#"{"model_type": "mixtral"}"#, overrides: [("no_such_field", "1")]).contains("no_such_field"))
        #expect(importError(#"{"model_type": "mixtral"}"#, overrides: [("hidden_size", "abc")]).contains("hidden_size"))
    }

    @Test(arguments: [
        (#"{"model_type": "bert"}"#, "model_type"),
        (#"{"hidden_size": 8}"#, "model_type"),
        (#"{"model_type": "llama", "hidden_size": -8}"#, "hidden_size"),
        (#"{"model_type": "llama", "num_attention_heads": 0}"#, "num_attention_heads"),
        (#"{"model_type": "llama", "hidden_size": 4095}"#, "num_attention_heads"),
        (#"{"model_type": "llama", "num_key_value_heads": 5}"#, "num_key_value_heads"),
        (#"{"model_type": "llama", "hidden_size": "4096"}"#, "hidden_size"),
        (#"{"model_type": "llama", "hidden_size": 4096.5}"#, "hidden_size"),
        (#"{"model_type": "llama", "tie_word_embeddings": 1}"#, "tie_word_embeddings"),
        (#"{"model_type": "mixtral", "num_experts_per_tok": 9}"#, "num_experts_per_tok"),
        (#"{"model_type": "qwen3_moe", "num_experts": 0}"#, "num_experts"),
        (#"{"model_type": "deepseek_v3", "topk_group": 9}"#, "topk_group"),
        (#"{"model_type": "deepseek_v3", "n_group": 7}"#, "n_group"),
        (#"{"model_type": "deepseek_v3", "first_k_dense_replace": 99}"#, "first_k_dense_replace"),
        (#"{"model_type": "deepseek_v3", "scoring_func": "relu"}"#, "scoring_func"),
        (#"{"model_type": "llama4"}"#, "text_config"),
        (#"{"model_type": "gpt_oss", "layer_types": ["sliding_attention"]}"#, "layer_types"),
        (#"{"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8}}"#, "original_max_position_embeddings"),
        (#"{"model_type": "llama", "rope_scaling": {"rope_type": "longrope", "factor": 8}}"#, "rope_type"),
        (#"{"model_type": "llama", "rms_norm_eps": 0}"#, "rms_norm_eps"),
        (#"{"model_type": "kimi_linear", "hidden_act": "gelu"}"#, "hidden_act"),
        (#"{"model_type": "kimi_linear", "hidden_act": "situ", "activation_situ_beta": 0}"#, "activation_situ_beta"),
        (#"{"model_type": "kimi_linear", "hidden_act": "situ", "activation_situ_beta": 1e-50}"#, "activation_situ_beta"),
        (#"{"model_type": "kimi_linear", "hidden_act": "situ", "activation_situ_linear_beta": 1e39}"#, "activation_situ_linear_beta"),
        (#"{"model_type": "kimi_linear", "linear_attn_config": {"gate_lower_bound": 0}}"#, "gate_lower_bound"),
        (#"{"model_type": "kimi_linear", "linear_attn_config": {"gate_lower_bound": -1e39}}"#, "gate_lower_bound"),
    ])
    func badConfigsNameTheField(json: String, field: String) {
        let message = importError(json)
        #expect(message.contains("test.json") && message.contains(field), "\(message)")
    }

    @Test func unknownModelTypeListsTheSupportedOnes() {
        let message = importError(#"{"model_type": "bert"}"#)
        for type in ["deepseek_v3", "kimi_k2", "qwen3_moe", "qwen2_moe", "mixtral", "llama4", "gpt_oss", "llama", "qwen3"] {
            #expect(message.contains(type))
        }
    }

    @Test func brokenFilesAreErrorsNotCrashes() {
        for text in [#"{"model_type": "llama", "hidden_"#, "not json", "[1, 2]", ""] {
            #expect(throws: ConfigError.self) { try JSONObject(data: Data(text.utf8), source: "broken.json") }
        }
        #expect(throws: ConfigError.self) { try ModelCatalog.load("/no/such/config.json") }
        #expect(throws: ConfigError.self) { try ModelCatalog.load("no-such-preset") }
    }
}

/// A what-if must change the model: a field this architecture does not use is an error that
/// names the fields that do; setting a field to the value it has is allowed.
@Suite struct OverrideTests {
    @Test func fieldsWithoutEffectAreRefused() throws {
        let path = root.appendingPathComponent("configs/models/deepseek-v3.json").path
        do {
            _ = try ModelSpec(contentsOf: path, overrides: [("num_key_value_heads", "8")])
            Issue.record("MLA accepted num_key_value_heads")
        } catch {
            #expect("\(error)".contains("no effect") && "\(error)".contains("kv_lora_rank"), "\(error)")
        }
        let more = try ModelSpec(contentsOf: path, overrides: [("n_routed_experts", "512")])
        #expect(more.moe?.routedExperts == 512)
        _ = try ModelSpec(contentsOf: path, overrides: [("n_routed_experts", "256")])
    }

    @Test func oversizedWhatIfsAreRefusedNotTrapped() throws {
        let path = root.appendingPathComponent("configs/models/kimi-k2.json").path
        for (key, value) in [("num_hidden_layers", "1000000000"), ("hidden_size", "9223372036854775807"),
                             ("n_routed_experts", "16000000"), ("moe_intermediate_size", "16000000")] {
            #expect(throws: ConfigError.self, "\(key)=\(value)") { try ModelSpec(contentsOf: path, overrides: [(key, value)]) }
        }
    }
}
