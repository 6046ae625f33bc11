import ArgumentParser
import Foundation
import Hardware
import TensorCore

struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this CPU: GEMM GFLOP/s (TensorCore and raw BLAS) and memory bandwidth.",
        discussion: """
        GEMM: best of 3 n×n×n sgemm runs through TensorCore and through cblas_sgemm directly. \
        Memory: best of 4 STREAM triad passes (a = b + s·c) over three arrays of 512 MiB each, \
        counting 12 bytes per element, and best of 4 read-only passes (a dot product of two of \
        them). --save writes this host as a hardware spec (configs/hardware format) that the \
        estimator can price, with the read bandwidth: weights and KV cache are read, not written.

        Examples:
          moesim calibrate
          moesim calibrate --threads 1 --json
          moesim calibrate --save configs/hardware/host-cpu.json
        """
    )

    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "GEMM size n for the n×n×n measurement.")
    var size = 2048

    @Option(help: "Total MiB of the three triad arrays (far above the L3 cache size).")
    var memoryMib = 1536

    @Option(help: "Write this host's hardware spec (JSON) to PATH.")
    var save: String?

    func validate() throws {
        guard size >= 16, size <= 16384 else { throw ValidationError("--size must be in 16...16384, got \(size)") }
        guard memoryMib >= 3 else { throw ValidationError("--memory-mib must be at least 3, got \(memoryMib)") }
    }

    func run() throws {
        try threadOptions.apply()
        let elements = memoryMib * 1024 * 1024 / 12
        let result = try Calibration.run(gemmSize: size, triadElements: elements,
                                         progress: output.json ? { _ in } : Output.progress)
        if let save {
            let date = ISO8601DateFormatter().string(from: Date())
            let spec = HardwareSpec.host(measured: result, measuredOn: date, name: "\(HostInfo.cpuName) (\(result.threads) threads)")
            do {
                try spec.encoded().write(to: URL(fileURLWithPath: save))
            } catch {
                throw ValidationError("cannot write --save \(save): \(error.localizedDescription)")
            }
        }
        if output.json {
            var object: [String: Any] = [
                "gemm_gflops": result.gemmFlops / 1e9,
                "blas_gemm_gflops": result.blasGemmFlops / 1e9,
                "memory_gb_per_s": result.memoryBandwidth / 1e9,
                "read_gb_per_s": result.readBandwidth / 1e9,
                "stream_gb_per_s": result.streamBandwidth / 1e9,
                "threads": result.threads,
                "gemm_size": result.gemmSize,
                "triad_bytes": result.triadBytes,
                "cpu": HostInfo.cpuName,
                "blas": Threading.blasConfiguration,
                "panel_kernels": PanelMatrix.Kernels.native?.rawValue ?? "none",
                "half_efficiency_rows": GroupedMatmul.halfEfficiencyRows,
            ]
            if let save { object["saved"] = save }
            try Output.printJSON(object)
            return
        }
        print("moesim calibrate: \(HostInfo.cpuName), \(result.threads) threads, \(Threading.blasConfiguration)")
        let n = result.gemmSize
        Output.printTable([
            ("GEMM \(n)×\(n)×\(n), TensorCore", "\(Output.fixed(result.gemmFlops / 1e9)) GFLOP/s"),
            ("GEMM \(n)×\(n)×\(n), raw cblas_sgemm", "\(Output.fixed(result.blasGemmFlops / 1e9)) GFLOP/s"
                + "  (TensorCore at \(Output.fixed(100 * result.gemmFlops / result.blasGemmFlops))%)"),
            ("memory bandwidth (STREAM triad)", "\(Output.fixed(result.memoryBandwidth / 1e9)) GB/s"),
            ("read bandwidth (dot product)", "\(Output.fixed(result.readBandwidth / 1e9)) GB/s"),
            ("decode kernel stream (GEMV)", "\(Output.fixed(result.streamBandwidth / 1e9)) GB/s  (the figure --save records: what decode draws)"),
            ("threads", "\(result.threads)"),
            ("runtime kernels", (PanelMatrix.Kernels.native.map { "\(PanelMatrix.describe($0)) panels" } ?? "OpenBLAS and portable SIMD")
                + " (small GEMMs reach half speed at \(Int(GroupedMatmul.halfEfficiencyRows)) rows)"),
        ])
        if let save { print("  wrote \(save)") }
    }
}
