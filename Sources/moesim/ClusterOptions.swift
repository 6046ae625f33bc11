import ArgumentParser
import Hardware
import ModelSpec
import Planner
import Serving

/// Number formats parsed by ArgumentParser itself: it checks the value and lists the choices
/// (`fp4` is NVFP4).
extension WeightFormat: ExpressibleByArgument {
    public static var allValueStrings: [String] { ["bf16", "fp8", "fp8-tensor", "fp4", "nvfp4", "mxfp4", "int4", "int4-g32", "f32"] }
}
extension KVCacheFormat: ExpressibleByArgument {
    public static var allValueStrings: [String] { ["bf16", "fp8", "f32"] }
}
extension ServingFramework: ExpressibleByArgument {}
extension SchedulerPolicy: ExpressibleByArgument {}
extension PrefillDecodeRouter: ExpressibleByArgument {}

/// `--weights`: one format for every matrix, or `checkpoint`: the formats the model's config
/// says its checkpoint ships in (DeepSeek-V4: fp8 with fp4 experts; gpt-oss and Kimi K3: bf16
/// with mxfp4 experts; DeepSeek-V3: fp8; no quantization_config: bf16).
enum WeightsChoice: ExpressibleByArgument, Equatable {
    case format(WeightFormat)
    case checkpoint

    init?(argument: String) {
        if argument == "checkpoint" { self = .checkpoint; return }
        guard let format = WeightFormat(argument: argument) else { return nil }
        self = .format(format)
    }

    static var allValueStrings: [String] { WeightFormat.allValueStrings + ["checkpoint"] }

    /// `--weights`' help, the same in every command that takes it.
    static let help = "Weight format: bf16, fp8 (128 × 128 blocks), fp8-tensor (per-tensor scales), fp4 (NVFP4), mxfp4, int4, "
        + "int4-g32, or checkpoint (the formats the model's config ships: DeepSeek-V4's fp4 experts)."
    var defaultValueDescription: String {
        switch self {
        case let .format(f): f.rawValue
        case .checkpoint: "checkpoint"
        }
    }

    /// The model as it will be priced and the format of its matrices (the experts' own format,
    /// when it differs, set on the model).
    func apply(to spec: ModelSpec) throws -> (ModelSpec, WeightFormat) {
        switch self {
        case let .format(format): (spec, format)
        case .checkpoint: try spec.asShipped()
        }
    }
}

/// `--attention-weights`: parsed by ArgumentParser, which lists the splits in help and errors.
extension AttentionWeightSplit: ExpressibleByArgument {
    static let help = "Attention projections' weight format where the checkpoint keeps them apart from the rest: bf16 "
        + "(AMD's MXFP4 and NVIDIA's first NVFP4 DeepSeek-R1 checkpoints exclude self_attn from FP4) or bf16-qkv (all but "
        + "the output projections in bf16, those in --weights: NVIDIA's v2 NVFP4 checkpoints)."

    /// The model as it will be priced with its attention in this split; an error when the
    /// weights are bf16 already (the split would change nothing).
    func apply(to spec: ModelSpec, weights: WeightFormat) throws -> ModelSpec {
        guard let split = spec.withAttentionWeights(split: self, pricedIn: weights) else {
            throw ValidationError("--attention-weights \(rawValue) changes nothing: the weights are \(weights.rawValue) already")
        }
        return split
    }
}

/// A comma-separated list of weight formats (compare, sweep).
func weightFormats(_ text: String) throws -> [WeightFormat] {
    try text.split(separator: ",").map { item in
        guard let f = WeightFormat(argument: String(item)) else {
            throw ValidationError("unknown weight format '\(item)' (\(WeightFormat.allValueStrings.joined(separator: ", ")); "
                + "checkpoint is taken by plan, estimate, serve, report and capacity)")
        }
        return f
    }
}

/// The options that describe a model on a cluster, shared by plan, estimate and serve.
struct DeploymentOptions: ParsableArguments {
    @Option(help: "Model preset id, config.json path or model folder.")
    var model = "kimi-k2"

    @Option(help: "Accelerator preset id or hardware file.")
    var gpu = "h200-sxm"

    @Option(help: "Number of GPUs (default 16; with disaggregated pools, their sum).")
    var gpus: Int?

    /// The GPU count asked for, or the default.
    var gpuCount: Int { gpus ?? 16 }

    @Option(help: "GPUs per node (one scale-up domain); default: the accelerator's domain size.")
    var gpusPerNode: Int?

    @Option(help: ArgumentHelp(WeightsChoice.help))
    var weights: WeightsChoice = .format(.fp8)

    @Option(help: ArgumentHelp(AttentionWeightSplit.help))
    var attentionWeights: AttentionWeightSplit?

    @Option(help: "KV-cache format: bf16 or fp8.")
    var kvCache: KVCacheFormat = .bf16

    @Option(help: "Layout, e.g. attention=dp,tp=1,ep=16,pp=1 (default: search all).")
    var layout: String?

    @OptionGroup var memory: MemoryReserveOption

    @OptionGroup var overrides: OverrideOptions

    func validate() throws {
        if let gpus, gpus < 1 { throw ValidationError("--gpus must be at least 1, got \(gpus)") }
        if let gpusPerNode, gpusPerNode < 1 { throw ValidationError("--gpus-per-node must be at least 1, got \(gpusPerNode)") }
    }

    var kvFormat: KVCacheFormat { kvCache }

    /// The model as it will be priced (`--weights checkpoint` sets its experts' own format,
    /// `--attention-weights` its attention projections') and the format of its matrices.
    func loadModel() throws -> (ModelSpec, WeightFormat) {
        let (spec, format) = try weights.apply(to: overrides.load(model))
        return (try attentionWeights.map { try $0.apply(to: spec, weights: format) } ?? spec, format)
    }
    func loadGPU() throws -> HardwareSpec { try HardwareCatalog.load(gpu) }
    func parsedLayout() throws -> Layout? { try layout.map(Layout.parse) }

    /// The other presets, for "or use a bigger GPU" advice.
    func alternatives() -> [HardwareSpec] {
        HardwareCatalog.presetIDs.compactMap { try? HardwareCatalog.load($0) }.sorted { $0.memoryBytes < $1.memoryBytes }
    }
}

/// The share of each GPU's memory the engine keeps back: one option for every command that
/// plans memory.
struct MemoryReserveOption: ParsableArguments {
    @Option(help: "Share of each GPU's memory the engine keeps back from weights, KV cache and activations (default 0.10: vLLM's --gpu-memory-utilization 0.9; SGLang's is 1 − --mem-fraction-static).")
    var memoryReserve: Double?

    /// The reserve asked for, or the planner's default.
    var reserve: Double { memoryReserve ?? MemoryModel.reservedFraction }

    func validate() throws {
        if let r = memoryReserve, !(0...MemoryModel.maxReserve).contains(r) {
            throw ValidationError("--memory-reserve must be 0 to \(MemoryModel.maxReserve), got \(r)")
        }
    }
}
