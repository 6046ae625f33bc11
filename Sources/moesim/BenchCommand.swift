import ArgumentParser
import ConfigFile
import Estimator
import Foundation
import Hardware
import ModelSpec
import Planner
import CPURuntime
import TensorCore

/// `--weights f32|bf16`: ArgumentParser checks the value and lists the choices.
extension CPUWeightFormat: ExpressibleByArgument {}

/// A model for the CPU runtime: a HuggingFace folder with weights, or a preset scaled down with
/// seeded random weights.
struct RuntimeModelOptions: ParsableArguments {
    @Option(help: "Divide hidden size, heads, ranks, intermediate sizes, experts and vocabulary by F (random weights only; default 8, or 4 or 2 when the model does not divide by 8).")
    var scale: Int?

    @Option(help: "Keep the first N layers (random weights only).")
    var layers: Int?

    @Option(help: "CPU weight format: f32 or bf16.")
    var weights: CPUWeightFormat = .f32

    @Option(help: "Seed of the random weights and prompts.")
    var seed: UInt64 = 1

    func validate() throws {
        if let scale, scale < 1 { throw ValidationError("--scale must be at least 1, got \(scale)") }
        if let layers, layers < 1 { throw ValidationError("--layers must be at least 1, got \(layers)") }
    }

    /// A folder with safetensors loads its real weights; anything else is scaled (default ÷8,
    /// 4 layers) and initialised from the seed.
    func load(_ reference: String, overrides: OverrideOptions) throws -> CPUModel {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: reference, isDirectory: &isFolder), isFolder.boolValue,
           (try? FileManager.default.contentsOfDirectory(atPath: reference))?.contains(where: { $0.hasSuffix(".safetensors") }) == true {
            if scale != nil || layers != nil {
                throw ValidationError("--scale and --layers apply to random weights; \(reference) has its own weights")
            }
            let spec = try overrides.load(reference)
            return try CPUModel(spec: spec, source: .folder(SafeTensorsFolder(folder: reference)), format: weights)
        }
        let full = try overrides.load(reference)
        // Default: ÷8, or the largest factor below it that the model's dimensions divide by
        // (Qwen3-235B's 16 heads per KV head leave ÷4).
        var spec: ModelSpec? = nil
        var firstError: Error? = nil
        for factor in scale.map({ [$0] }) ?? [8, 4, 2] {
            do {
                spec = try full.scaled(by: factor, layers: layers ?? 4)
                break
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        guard let spec else { throw firstError ?? ValidationError("cannot scale \(reference)") }
        return try CPUModel(spec: spec, source: .random(seed: seed), format: weights)
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a scaled-down model on this CPU and compare its speed with the estimator's prediction.",
        discussion: """
        Prefills --batch prompts of --prompt random tokens, then decodes --generate tokens each. \
        Prints prefill and decode tokens/s, achieved GFLOP/s and memory GB/s, tokens per expert, \
        and what the estimator predicts for this CPU (from --host, a file written by \
        `moesim calibrate --save`, or a short calibration now), with the prefill time split by \
        part of the model (attention, MLP, MoE, head, norms) beside the estimator's split. \
        On x86-64 the weights are stored in panels for TensorCore's AVX-512 or AVX2 kernels.

        Examples:
          moesim bench kimi-k2                # ÷8 widths, 4 layers, random weights
          moesim bench qwen3-max-1t --scale 16 --layers 8 --weights bf16
          moesim bench deepseek-v3 --batch 8 --prompt 256 --generate 64 --json
          moesim bench ~/models/Qwen3-30B-A3B # a HuggingFace folder, real weights
        """
    )

    @Argument(help: "Preset id, config.json path, or HuggingFace model folder.")
    var model = "kimi-k2"

    @OptionGroup var runtime: RuntimeModelOptions
    @OptionGroup var overrides: OverrideOptions
    @OptionGroup var threadOptions: ThreadOptions

    @Option(help: "Sequences decoded together.")
    var batch = 4

    @Option(help: "Prompt tokens per sequence.")
    var prompt = 128

    @Option(help: "Tokens generated per sequence.")
    var generate = 32

    @Option(help: "Hardware spec of this host (moesim calibrate --save); default: measure now.")
    var host: String?

    @Option(help: ArgumentHelp("Exit non-zero when measured / predicted prefill or decode tokens/s is off by more than this fraction (e.g. 0.25).",
                               valueName: "tolerance"))
    var check: Double?

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard batch >= 1, prompt >= 1, generate >= 1 else { throw ValidationError("--batch, --prompt and --generate must be at least 1") }
        if let check, !(check > 0 && check.isFinite) { throw ValidationError("--check must be a positive fraction, got \(check)") }
    }

    func run() throws {
        try threadOptions.apply()
        let quiet = output.json
        let progress: (String) -> Void = { line in if !quiet { Output.progress(line) } }
        progress("building \(model)")
        let cpu = try runtime.load(model, overrides: overrides)
        let spec = cpu.spec
        let hostSpec: HardwareSpec
        if let host { hostSpec = try HardwareSpec(contentsOf: host) } else {
            progress("calibrating this CPU for the prediction")
            hostSpec = try HardwareSpec.measureHost().0
        }
        let result = try RuntimeBench.run(cpu, batch: batch, promptTokens: prompt, generate: generate, seed: runtime.seed,
                                          progress: progress)
        if let measured = hostSpec.threads, measured != Threading.count {
            progress("note: \(host ?? "the host spec") was measured with \(measured) threads and this run uses \(Threading.count); "
                + "the prediction assumes \(measured)")
        }
        let predicted = try? CPUCheck.predict(spec, host: hostSpec, weights: cpu.format.weightFormat,
                                              batch: batch, prompt: prompt, generate: generate)
        let load = result.expertLoad
        let mean = load.isEmpty ? 0 : Double(load.reduce(0, +)) / Double(load.count)
        if output.json {
            var json: [String: Any] = [
                "model": spec.id, "params": spec.parameterCounts.total, "weights": cpu.format.rawValue,
                "weight_bytes": result.weightBytes, "kv_cache_bytes": result.kvCacheBytes, "batch": batch,
                "prompt_tokens": prompt, "generated_tokens": generate, "threads": Threading.count,
                "prefill_tokens_per_s": result.prefillTokensPerSecond, "decode_tokens_per_s": result.decodeTokensPerSecond,
                "gemm_gflops": result.gflops, "prefill_gflops": result.prefillGFLOPs,
                "prefill_moe_gflops": result.prefillMoEGFLOPs.map { $0 as Any } ?? NSNull(),
                "memory_gb_per_s": result.decodeMemoryGBPerSecond, "expert_load": load,
                "host_gemm_gflops": (hostSpec.peakFlops["fp32"] ?? 0) / 1e9, "host_memory_gb_per_s": hostSpec.memoryBandwidth / 1e9,
            ]
            if let p = predicted {
                json["predicted_prefill_tokens_per_s"] = p.inputTokensPerSecondPerGPU
                json["predicted_decode_tokens_per_s"] = p.outputTokensPerSecondPerGPU
            }
            json["prefill_seconds_by_part"] = Dictionary(uniqueKeysWithValues: Operator.Block.allCases.map { block in
                (block.rawValue, ["measured": result.prefillBlockSeconds[block] ?? 0,
                                  "predicted": predicted?.prefillStep.blocks[block] ?? 0])
            })
            try Output.printJSON(json)
            try enforceCheck(result, predicted: predicted)
            return
        }
        print("\(spec.id): \(Output.count(spec.parameterCounts.total)) parameters (\(Output.count(spec.parameterCounts.active)) active), "
            + "hidden \(spec.hiddenSize), \(spec.layerCount) layers"
            + (spec.moe.map { ", \($0.routedExperts) experts × \($0.expertIntermediateSize), \($0.expertsPerToken) per token" } ?? ""))
        print("weights \(Output.bytes(Double(result.weightBytes))) \(cpu.format.rawValue), KV cache \(Output.bytes(Double(result.kvCacheBytes))) "
            + "f32 after the run; \(Threading.count) threads")
        print("")
        Output.printColumns(header: ["", "measured", "predicted", "measured / predicted"], rows: [
            ["prefill tokens/s", Output.rate(result.prefillTokensPerSecond), predicted.map { Output.rate($0.inputTokensPerSecondPerGPU) } ?? "—",
             predicted.map { Output.fixed(result.prefillTokensPerSecond / $0.inputTokensPerSecondPerGPU, 2) } ?? "—"],
            ["decode tokens/s", Output.rate(result.decodeTokensPerSecond), predicted.map { Output.rate($0.outputTokensPerSecondPerGPU) } ?? "—",
             predicted.map { Output.fixed(result.decodeTokensPerSecond / $0.outputTokensPerSecondPerGPU, 2) } ?? "—"],
        ])
        print("")
        // Parts the model has (a dense model has no MoE row).
        let parts = Operator.Block.allCases.filter { (result.prefillBlockFLOPs[$0] ?? 0) > 0 || (result.prefillBlockSeconds[$0] ?? 0) > 0 }
        Output.printColumns(header: ["prefill by part", "measured ms", "predicted ms", "GFLOP/s"], rows: parts.map { block in
            let seconds = result.prefillBlockSeconds[block] ?? 0, flops = result.prefillBlockFLOPs[block] ?? 0
            return [block.rawValue, Output.fixed(1000 * seconds, 1),
                    predicted.map { Output.fixed(1000 * ($0.prefillStep.blocks[block] ?? 0), 1) } ?? "—",
                    seconds > 0 && flops > 0 ? Output.fixed(flops / seconds / 1e9) : "—"]
        })
        print("")
        Output.printTable([
            ("achieved", "\(Output.fixed(result.prefillGFLOPs)) GFLOP/s in prefill (host GEMM: \(Output.fixed((hostSpec.peakFlops["fp32"] ?? 0) / 1e9)))"),
            ("MoE layers", result.prefillMoEGFLOPs.map { "\(Output.fixed($0)) GFLOP/s in prefill (\(Output.fixed(100 * $0 / max((hostSpec.peakFlops["fp32"] ?? 0) / 1e9, 1e-9), 0))% of host GEMM)" } ?? "dense model"),
            ("decode reads", "\(Output.fixed(result.decodeMemoryGBPerSecond)) GB/s of weights and KV (host: \(Output.fixed(hostSpec.memoryBandwidth / 1e9)))"),
            ("expert load", load.isEmpty ? "dense model" : "max \(load.max() ?? 0) / mean \(Output.fixed(mean, 1)) tokens per expert "
                + "(\(Output.fixed(Double(load.max() ?? 0) / max(mean, 1e-9), 2)) × mean)"),
        ])
        try enforceCheck(result, predicted: predicted)
    }

    /// `--check`: the estimator's CPU prediction against this run (what `make check-cpu` runs).
    /// A timing comparison, so it lives here and not in the test command: it depends on the machine.
    func enforceCheck(_ result: BenchResult, predicted: Estimate?) throws {
        guard let check else { return }
        guard let predicted else { throw ValidationError("--check: the estimator could not price this model on this host") }
        let prefill = result.prefillTokensPerSecond / predicted.inputTokensPerSecondPerGPU
        let decode = result.decodeTokensPerSecond / predicted.outputTokensPerSecondPerGPU
        let line = "measured / predicted: prefill \(Output.fixed(prefill, 2)), decode \(Output.fixed(decode, 2)) (tolerance ±\(Output.fixed(check, 2)))"
        guard abs(prefill - 1) <= check, abs(decode - 1) <= check else { throw ValidationError("CPU check failed: " + line) }
        if !output.json { print("CPU check passed: " + line) }
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Greedy generation from a HuggingFace model folder (config.json + *.safetensors).",
        discussion: """
        Examples:
          moesim generate Tests/CPURuntimeTests/Fixtures/mixtral \\
              --tokens 3,17,42 --max-new 8
          moesim generate ~/models/Qwen3-30B-A3B --tokens 151644,872 --max-new 16 \\
              --weights bf16 --json
        """
    )

    @Argument(help: "HuggingFace model folder.")
    var folder: String

    @Option(help: "Prompt token ids, comma-separated.")
    var tokens: String

    @Option(help: "Tokens to generate.")
    var maxNew = 16

    @Option(help: "CPU weight format: f32 or bf16.")
    var weights: CPUWeightFormat = .f32

    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try threadOptions.apply()
        guard (1...65_536).contains(maxNew) else { throw ValidationError("--max-new must be 1 to 65,536, got \(maxNew)") }
        let prompt = try tokens.split(separator: ",").map { text -> Int in
            guard let id = Int(text.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--tokens: '\(text)' is not an integer") }
            return id
        }
        guard !prompt.isEmpty else { throw ValidationError("--tokens needs at least one token id") }
        let spec = try ModelCatalog.load(folder)
        let model = try CPUModel(spec: spec, source: .folder(SafeTensorsFolder(folder: folder)), format: weights)
        let generation = try model.generateTimed(prompts: [prompt], maxNew: maxNew)
        let generated = generation.tokens[0]
        let (prefillRate, decodeRate) = generation.rates(promptTokens: prompt.count)
        if output.json {
            try Output.printJSON(["tokens": generated, "prefill_tokens_per_s": prefillRate, "decode_tokens_per_s": decodeRate])
            return
        }
        print(generated.map(String.init).joined(separator: ","))
        print("prefill \(Output.rate(prefillRate)) tokens/s, decode \(Output.rate(decodeRate)) tokens/s")
    }
}
