import Hardware

/// The few efficiency assumptions of the estimator beyond each hardware file's own factors.
/// Each is a property of a kind of hardware or kernel, documented here, never fitted to a
/// measurement.
public enum Efficiency {
    /// Rows of a GEMM at which it reaches half its large-GEMM efficiency, so that a GEMM of M rows
    /// reaches eff · M / (M + half). The hardware file may give it (`half_efficiency_rows`; a host
    /// spec from `moesim calibrate` does, for the kernels that CPU runs); otherwise: tensor-core
    /// tiles are 64–128 rows on Hopper and Blackwell, so 64 on a GPU; on a CPU, 44, OpenBLAS's
    /// figure (a loop of 64-row sgemm calls, one per expert, reaches 59% of one large GEMM because
    /// it repacks the whole weight for every call; docs/performance.md).
    public static func halfEfficiencyRows(_ hardware: HardwareSpec) -> Double {
        hardware.efficiency.halfEfficiencyRows ?? (hardware.kind == .gpu ? 64 : 44)
    }

    /// Products of at most this many rows run as matrix-vector kernels (cuBLAS's gemv paths,
    /// TensorCore's small-batch kernels) that stream the weights once with full-width FMAs: they
    /// are bounded by memory, not by tile utilisation.
    public static let matrixVectorRows = 8.0

    /// Fraction of peak a GEMM of `rows` rows reaches when compute-bound. `blockScaledFP8`: its
    /// weights are FP8 with a scale per 128 × 128 block (`WeightFormat.fp8`), which the hardware
    /// file may price lower (`block_scaled_fp8_matmul`: Hopper, 0.60 from DeepGEMM's table).
    public static func matmul(_ hardware: HardwareSpec, rows: Double, blockScaledFP8: Bool = false) -> Double {
        let large = blockScaledFP8 ? hardware.efficiency.blockScaledFP8Matmul ?? hardware.efficiency.matmul : hardware.efficiency.matmul
        let m = max(rows, 1)
        if m <= matrixVectorRows { return large }
        return large * m / (m + halfEfficiencyRows(hardware))
    }

    /// Attention kernels (FlashAttention-3, FlashMLA) reach about 0.8 of the large-GEMM share of
    /// peak: FlashMLA's 660 TFLOP/s on H800 is 0.67 of 989, against cuBLAS's 0.75–0.8.
    public static let attentionToMatmul = 0.8

    /// Share of peak memory bandwidth at which GPU GEMM kernels stream their weights at decode
    /// shapes (few rows, memory-bound): DeepGEMM's published decode-shape FP8 GEMMs on H800
    /// (3.35 TB/s) reach 1,688–2,455 GB/s, a median of 0.64 of peak (README table, M = 64 rows,
    /// N × K from DeepSeek-V3's projections); a device copy reaches about 0.85-0.9. Grouped
    /// expert GEMMs stream expert slices of the same sizes. Applied to the weight bytes of matmul
    /// and grouped-matmul operators on GPUs, capped by the hardware file's own memory factor.
    /// The CPU's kernels are measured by `moesim calibrate` instead.
    public static let gpuWeightStreaming = 0.64

    /// Latency of one small all-reduce over `gpus` GPUs spread over `nodes` scale-up domains:
    /// NCCL's own latency model for its low-latency (LL) protocol (src/graph/tuning.cc): within
    /// one domain a ring, a base of 6.6 µs plus 0.6 µs per NVLink hop over its 2(n − 1) hops, about
    /// 15 µs on 8 GPUs, where one link's latency (3 µs) undercounts it. Across domains NCCL takes
    /// the faster of a ring, whose 2·nodes network hops cost 2.7 µs each and whose other hops at
    /// least the 1 µs network post overhead, and a tree, a base of 6.8 µs plus 2 × (0.6 µs per
    /// NVLink hop inside a node + 5 µs per level of the tree over the nodes): 25 µs for 16 GPUs
    /// on 2 nodes, where a single network latency (10 µs) undercounts it.
    public static func allReduceLatency(gpus: Int, nodes: Int = 1) -> Double {
        let n = Double(max(gpus, 1)), hops = 2 * (n - 1)
        guard nodes > 1 else { return 6.6e-6 + 0.6e-6 * hops }
        let m = Double(nodes), perNode: Double = max(n / m, 1)
        let levels = Double(Int.bitWidth - 1 - nodes.leadingZeroBitCount)  // ⌊log2 nodes⌋, NCCL's log2i
        // Hops that stay in a node cost max(NVLink's 0.6 µs, the 1 µs network post overhead);
        // NCCL counts 2 · nodes network hops (none left inside a node with one GPU per node).
        let ringIntra: Double = max(hops - 2 * m, 0) * 1e-6
        let ring: Double = 6.6e-6 + ringIntra + 2 * m * 2.7e-6
        let tree: Double = 6.8e-6 + 2 * ((perNode - 1) * 0.6e-6 + levels * 5e-6)
        return min(ring, tree)
    }

    /// SMs DeepEP's normal-mode (prefill) dispatch and combine kernels occupy: DeepEP's default
    /// `Buffer.num_sms` is 20, the figure DeepSeek-V3's report gives for saturating IB and NVLink
    /// (§3.2.2). SGLang's two-batch overlap in prefill keeps them for DeepEP during the whole
    /// overlapped forward and gives DeepGEMM the rest (`deep_gemm_num_sms = total −
    /// DeepEPConfig.num_sms`). Its low-latency (decode) kernels occupy none.
    public static let deepEPNormalSMs = 20.0

    /// Fixed cost per kernel: launch and tail of a GPU kernel under CUDA graphs (a few µs); on the
    /// CPU, a parallel region of TensorCore. A hardware file's `kernel_overhead` replaces it (the
    /// MI300X's and MI325X's, from a published decode measurement: see their sources).
    public static func kernelOverhead(_ hardware: HardwareSpec) -> Double {
        hardware.kernelOverhead ?? (hardware.kind == .gpu ? 4e-6 : 2e-6)
    }

    /// Host time to launch one kernel of a step run eagerly (PyTorch without CUDA graphs): a
    /// step with prompt tokens under `EstimateRequest.Feature.eagerPrefill` takes at least
    /// kernels × this, however little the GPU has to do, since the host issues the kernels one by
    /// one while the GPU runs them. From SGLang PR #12160: one eager prefill forward of
    /// DeepSeek-V3 with a single new token took 82.6 ms ("forward cost" in the server log), 23.1 ms
    /// once captured in a CUDA graph, and "prefill latency is similar when new_tokens < 100" (a
    /// floor the host sets); moesim counts 848 kernels in that forward (61 layers at TP8), so
    /// 82.6 ms / 848 = 97 µs per kernel. A modelled kernel stands for the several PyTorch calls
    /// of one operator. The host's CPU is not modelled: this is a property of the framework kind.
    public static let eagerLaunch = 82.6e-3 / 848

    /// Peak FLOP/s for a number format, falling back to bf16 (weights dequantized before the
    /// matmul) when the hardware has no units for it, and to fp32 on a CPU.
    public static func peak(_ hardware: HardwareSpec, format: String) -> Double {
        hardware.peakFlops[format] ?? hardware.peakFlops["bf16"] ?? hardware.peakFlops["fp32"] ?? 1
    }

    /// The format a GEMM runs in: the wider of its weights' and its activations'. Tensor cores
    /// take mixed operands at the wider one's rate: Blackwell's FP4 rate needs both operands in
    /// FP4 (tcgen05 `kind::mxf4nvf4`), FP4 weights against FP8 activations run at the FP8 rate
    /// (`kind::f8f6f4`), and weights below bf16 against bf16 activations (W4A16, gpt-oss's MXFP4
    /// experts in a bf16 model) are dequantized to bf16.
    public static func matmulFormat(weights: String, activations: String) -> String {
        let narrowToWide = ["fp4", "fp8", "bf16", "fp32"]
        guard let w = narrowToWide.firstIndex(of: weights), let a = narrowToWide.firstIndex(of: activations) else { return activations }
        return narrowToWide[max(w, a)]
    }
}
