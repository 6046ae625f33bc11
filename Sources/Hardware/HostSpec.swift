import Foundation

extension HardwareSpec {
    /// The spec of this CPU host from measured figures (`moesim calibrate --save`).
    ///
    /// The peak FLOP/s and bandwidth are what was measured, so the efficiency factors are 1: the
    /// achievable fraction is already inside the figures. bf16 weights are widened to f32 before
    /// the arithmetic on the CPU, so bf16 runs at the f32 rate. A host is its own scale-up domain
    /// of one and has no network.
    /// `memoryBandwidth` should be the read bandwidth: the estimator prices weight and KV reads.
    /// `halfEfficiencyRows` describes the kernels the runtime uses for small products on this CPU
    /// (TensorCore's `GroupedMatmul.halfEfficiencyRows`).
    public static func host(name: String, memoryBytes: Int, gemmFlops: Double, memoryBandwidth: Double,
                            threads: Int, halfEfficiencyRows: Double, measuredOn date: String) -> HardwareSpec {
        let source = "moesim calibrate on \(date), \(threads) threads"
        var spec = HardwareSpec(
            id: "host-cpu", name: name, kind: .cpu, memoryBytes: memoryBytes,
            memoryBandwidth: memoryBandwidth, peakFlops: ["fp32": gemmFlops, "bf16": gemmFlops],
            scaleUpBandwidth: 0, scaleUpDomain: 1, scaleUpLatency: 0,
            scaleOutBandwidth: 0, scaleOutLatency: 0,
            efficiency: Efficiency(matmul: 1, memory: 1, scaleUp: 1, scaleOut: 1, halfEfficiencyRows: halfEfficiencyRows),
            gpuHourPrice: nil,
            sources: [
                "memory_bandwidth": "\(source): weights streamed by the runtime's decode kernel (one row through a matrix beyond L3)",
                "peak_flops": "\(source): best sgemm rate through TensorCore",
                "memory_bytes": "physical memory reported by the OS",
                "efficiency": "1: the figures are measured, not datasheet peaks; half_efficiency_rows from "
                    + "TensorCore's grouped-matmul benchmark for the kernels this CPU runs (docs/performance.md)",
            ])
        spec.threads = threads
        return spec
    }
}
