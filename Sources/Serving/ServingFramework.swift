import Estimator

/// The serving engines whose defaults moesim prices: how each fits prompts into steps and whether
/// it runs prompt steps under CUDA graphs. `--framework` on the command line and a measurements
/// file's `framework` both resolve here, so the two cannot disagree.
public enum ServingFramework: String, Sendable, CaseIterable {
    /// vLLM V1: chunked prefill mixed into decode steps; prefill steps captured piecewise
    /// (`FULL_AND_PIECEWISE`, its default since v0.11).
    case vllm
    /// SGLang: a waiting prompt runs in a prefill-only step (`enable_mixed_chunk=False`); its CUDA
    /// graphs capture decode steps only, so prompt steps run eagerly (piecewise prefill graphs are
    /// opt-in, `--enable-piecewise-cuda-graph`; disaggregated prefill servers run without graphs,
    /// PR #13377).
    case sglang
    /// TensorRT-LLM's PyTorch backend: context chunks mixed into generation steps. Its CUDA graphs
    /// capture generation-only steps; context and mixed steps run eagerly unless piecewise CUDA
    /// graphs are turned on (`torch_compile_config.enable_piecewise_cuda_graph`, default false in
    /// `TorchCompileConfig`; its documentation: "to reduce context-phase launch overhead"). The
    /// host's launch cost per kernel is SGLang's measured one, PyTorch eager in both: an
    /// assumption, checked on InferenceX's B200 runs, where one run's 1K prompts at TP4 and TP8
    /// EP1 without piecewise graphs took 140–150 ms to the first token and at TP8 EP8, the shape
    /// its recipe graphs piecewise, 73 ms.
    case tensorrtLLM = "tensorrt-llm"

    /// A framework as a measurements file or a benchmark names it: InferenceX's `sglang`,
    /// `dynamo-sglang` and `mori-sglang` run SGLang workers, `trt` and `dynamo-trt`
    /// TensorRT-LLM's; nil for others (AMD's ATOM), which keep moesim's defaults.
    public init?(name: String) {
        let n = name.lowercased()
        if n.contains("sglang") { self = .sglang }
        else if n.contains("vllm") { self = .vllm }
        else if n == "trt" || n.hasSuffix("-trt") || n.contains("tensorrt") || n.contains("trtllm") { self = .tensorrtLLM }
        else { return nil }
    }

    public var scheduler: SchedulerPolicy { self == .sglang ? .prefillFirst : .mixed }

    /// Whether chunks of one prompt fill a pipeline's micro-batches: SGLang's chunked pipeline
    /// parallelism ("different chunks of the same request can be processed simultaneously by
    /// different nodes", its Pipeline Parallelism for Long Context documentation). vLLM and
    /// TensorRT-LLM keep a request in one batch in flight at a time, so its next chunk waits for
    /// the last stage.
    public var pipelinesPromptChunks: Bool { self == .sglang }

    /// The features it adds to an estimate: SGLang's and TensorRT-LLM's prompt steps pay the
    /// host's eager launch floor (`EstimateRequest.Feature.eagerPrefill`); vLLM's are graphed.
    public var features: Set<EstimateRequest.Feature> { self == .vllm ? [] : [.eagerPrefill] }
}
