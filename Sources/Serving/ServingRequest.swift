import Estimator
import Hardware
import ModelSpec
import Planner

/// A deployment serving a closed loop of requests: `concurrency` requests in flight across the
/// whole deployment, each replaced by a new one the moment it finishes (how benchmark clients such
/// as InferenceX's drive a server).
public struct ServingRequest: Sendable {
    /// Model, GPU kind and total GPU count, formats, prompt and answer lengths, features,
    /// prefix-cache hit rate, expert skew, price; its `layout` is the aggregated layout (nil:
    /// search), its `decodeBatchPerGPU` is ignored (the concurrency sets the batch).
    public var base: EstimateRequest
    public var concurrency: Int
    /// Prompt lengths are drawn uniformly from [lo, hi] × `base.inputTokens` (InferenceX: 0.8–1.0).
    public var inputRange: LengthRange
    /// Answer lengths are drawn uniformly from [lo, hi] × `base.outputTokens`. Benchmark clients
    /// draw both from the same ratio: vLLM's and SGLang's `benchmark_serving.py`, which InferenceX
    /// runs with `--random-range-ratio 0.8 --ignore-eos`, sample `output_lens` from
    /// [output_len × ratio, output_len] as they do `input_lens`.
    public var outputRange: LengthRange
    /// Separate prefill and decode pools; nil: every worker prefills and decodes.
    public var disaggregation: Disaggregation?
    public var speculative: SpeculativeDecoding?
    public var scheduler: SchedulerPolicy
    /// Tokens one scheduler (one attention group: a tensor-parallel engine or a data-parallel
    /// attention rank) processes per step; nil: `SchedulerPolicy.defaultTokenBudget`.
    public var tokenBudget: Int?
    /// Seed of the prompt and answer lengths.
    public var seed: UInt64
    /// The engine's cap on requests running at once, per GPU (TensorRT-LLM's `max_batch_size` per
    /// attention rank, SGLang's `--max-running-requests` and vLLM's `--max-num-seqs`, each over
    /// the GPUs it spans: a TP8 engine's 512 is 64 per GPU); requests past it wait for a slot
    /// (in a decode pool, with their prompt done). Applies to the workers that decode; nil:
    /// `Estimator.maxBatchPerGPU`, memory permitting.
    public var maxBatchPerGPU: Int?
    /// Prefill-first scheduler: decode steps in runs of this many before new prompts are looked
    /// at (SGLang's `--num-continuous-decode-steps`; InferenceX's MI325X and MI355X recipes use 4).
    public var continuousDecodeSteps = 1
    /// Prefill-first scheduler: while it decodes, the scheduler reads new requests only every
    /// this many decode steps, and right after a prefill step (SGLang's
    /// `--scheduler-recv-interval`, its `SchedulerRecvSkipper`: decode steps weigh 1, a prefill
    /// 1,000 against the threshold). Requests read earlier (waiting for memory or a slot) are
    /// scheduled as usual. InferenceX's B200 recipes use 10, and 30 at TP8 from a concurrency of
    /// 16. Both this and continuous decode steps are settings of an aggregated engine.
    public var schedulerRecvInterval = 1
    /// The most decode steps between two looks at new prompts moesim prices, for either setting.
    public static let maxDecodeRun = 1_024
    /// Prompts split into chunks within the token budget (vLLM V1, SGLang, TensorRT-LLM by
    /// default); false runs every prompt whole (`--no-chunked-prefill`; vLLM's
    /// `enable_chunked_prefill=False`, SGLang's `chunked_prefill_size=-1`).
    public var chunkedPrefill = true
    /// A worker of pp pipeline stages runs up to pp chunks of one prompt in a step, one per
    /// micro-batch, each entering the pipeline as the previous leaves its first stage
    /// (`ServingFramework.pipelinesPromptChunks`: SGLang); false: one chunk of a prompt a step,
    /// its next chunk after the last stage (vLLM, TensorRT-LLM). Nothing changes without pp.
    public var pipelinedPromptChunks = false
    /// The engine forms step n + 1 while step n runs (an overlap scheduler), so a request that
    /// arrives during step n joins step n + 2 at the earliest, one step later than with a plain
    /// loop. The 2026 default of every engine the measurements name: SGLang's zero-overhead
    /// scheduler (since v0.4, `--disable-overlap-schedule` turns it off), TensorRT-LLM's overlap
    /// scheduler ("introduces one extra decoding step", `disable_overlap_scheduler`), vLLM's async
    /// scheduling (default since v0.14, `--no-async-scheduling`). false: `--no-overlap-schedule`,
    /// `overlap_schedule: false` in a measurements file.
    public var overlapSchedule = true
    /// Disaggregated: the router in front of the pools (`PrefillDecodeRouter`); nil prices none
    /// beyond the KV transfer (the first token reaches the client when the decode server has it).
    public var router: PrefillDecodeRouter?
    /// A benchmark client's run instead of the steady state: this many prompts in all, the first
    /// `concurrency` sent at once, each later one when a request finishes, every request measured
    /// and throughput counted to the last completion (vLLM's and SGLang's `bench_serving` with
    /// `--num-prompts` and `--max-concurrency`; InferenceX sends 10 × concurrency). nil: the
    /// steady state of the loop.
    public var benchmarkPrompts: Int?

    public init(base: EstimateRequest, concurrency: Int, inputRange: LengthRange = .fixed, outputRange: LengthRange = .fixed,
                disaggregation: Disaggregation? = nil, speculative: SpeculativeDecoding? = nil,
                scheduler: SchedulerPolicy = .mixed, tokenBudget: Int? = nil, seed: UInt64 = 1) {
        self.base = base
        self.concurrency = concurrency
        self.inputRange = inputRange
        self.outputRange = outputRange
        self.disaggregation = disaggregation
        self.speculative = speculative
        self.scheduler = scheduler
        self.tokenBudget = tokenBudget
        self.seed = seed
    }

    /// The longest context a request reaches: its longest prompt plus its longest answer.
    public var maxContext: Int {
        inputRange.tokens(base.inputTokens).upper + outputRange.tokens(base.outputTokens).upper
    }
}

/// Prompt or answer lengths as fractions of the nominal length, drawn uniformly.
public struct LengthRange: Sendable, Equatable {
    public var lower: Double
    public var upper: Double

    public static let fixed = LengthRange(lower: 1, upper: 1)

    public init(lower: Double, upper: Double) {
        self.lower = lower
        self.upper = upper
    }

    /// Whether 0 < lower ≤ upper ≤ 1.
    public var isValid: Bool { lower > 0 && lower <= upper && upper <= 1 && lower.isFinite }

    /// The shortest and longest length in tokens for a nominal length (at least 1 each).
    public func tokens(_ nominal: Int) -> (lower: Int, upper: Int) {
        let n = Double(nominal)
        return (max(1, Int((lower * n).rounded())), max(1, Int((upper * n).rounded())))
    }

    /// Mean length in tokens for a nominal length, as the uniform integer draw gives it.
    public func meanTokens(_ nominal: Int) -> Double {
        let t = tokens(nominal)
        return Double(t.lower + t.upper) / 2
    }
}

/// How a scheduler fits prompts into steps. A property of the serving framework.
public enum SchedulerPolicy: String, Sendable, CaseIterable {
    /// Chunked prefill mixed into decode steps under one token budget (vLLM V1, TensorRT-LLM,
    /// SGLang with `--enable-mixed-chunk`).
    case mixed
    /// A waiting prompt runs in a prefill-only step and the decodes pause for it (SGLang's
    /// default, `enable_mixed_chunk=False`).
    case prefillFirst = "prefill-first"

    /// SGLang's default `chunked_prefill_size`: 8,192 tokens on GPUs under 160 GiB (H100, H200),
    /// 16,384 from 160 GiB (B200, B300, MI300X and up) (sglang server_args.py); vLLM's
    /// `max_num_batched_tokens` for its API server on large GPUs is 8,192.
    public static func defaultTokenBudget(_ gpu: HardwareSpec) -> Int {
        Double(gpu.memoryBytes) >= 160 * 1_073_741_824 ? 16_384 : 8_192
    }
}

/// Prefill and decode on separate GPU pools (DistServe, Mooncake, Dynamo, SGLang PD): each pool
/// has its own layout and workers; each prompt's KV cache crosses from one to the other.
public struct Disaggregation: Sendable, Equatable {
    public struct Pool: Sendable, Equatable {
        public var gpus: Int
        /// Engine instances of the pool; each holds gpus / workers GPUs cut by `layout`.
        public var workers: Int
        /// nil: the serving estimate chooses the layout (`ServingEstimator.poolLayouts`).
        public var layout: Layout?

        public init(gpus: Int, workers: Int, layout: Layout?) {
            self.gpus = gpus
            self.workers = workers
            self.layout = layout
        }

        public var gpusPerWorker: Int { gpus / max(workers, 1) }
    }

    public var prefill: Pool
    public var decode: Pool

    public init(prefill: Pool, decode: Pool) {
        self.prefill = prefill
        self.decode = decode
    }
}

/// Speculative decoding with multi-token prediction (DeepSeek-V3's MTP modules, EAGLE-style
/// drafts): each decode step verifies `draftTokens` drafted tokens per sequence and keeps
/// `acceptance` tokens on average (1 ≤ acceptance ≤ draftTokens + 1).
public struct SpeculativeDecoding: Sendable, Equatable {
    public var draftTokens: Int
    /// Mean tokens emitted per decode step and sequence, the verified token included.
    public var acceptance: Double

    public init(draftTokens: Int, acceptance: Double? = nil) {
        self.draftTokens = draftTokens
        self.acceptance = acceptance ?? Self.defaultAcceptance(draftTokens: draftTokens)
    }

    /// Mean tokens per step measured for DeepSeek-R1's MTP on 8 × B200 at batch 1 (TensorRT-LLM
    /// tech blog 1, "Pushing latency boundaries"): 1.92 with one draft, 2.58 with two, 2.82 with
    /// three, 2.99 with four, 3.01 with five; DeepSeek-V3's report gives 85–90% acceptance of the
    /// second token (1.85–1.9). Past five drafts the last figure is kept.
    public static func defaultAcceptance(draftTokens: Int) -> Double {
        let measured = [1.0, 1.92, 2.58, 2.82, 2.99, 3.01]
        return measured[min(max(draftTokens, 0), measured.count - 1)]
    }
}
