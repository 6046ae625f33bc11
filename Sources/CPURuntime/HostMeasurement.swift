import Hardware
import TensorCore

extension HardwareSpec {
    /// This host as a hardware spec from a calibration: its GEMM rate as peak FLOP/s, what the
    /// runtime's decode kernel streams as memory bandwidth, the small-GEMM curve of the kernels
    /// this CPU runs. The one place `calibrate --save`, `bench` and `report` build it.
    public static func host(measured c: CalibrationResult, measuredOn date: String, name: String = HostInfo.cpuName) -> HardwareSpec {
        host(name: name, memoryBytes: HostInfo.memoryBytes, gemmFlops: c.gemmFlops, memoryBandwidth: c.streamBandwidth,
             threads: c.threads, halfEfficiencyRows: GroupedMatmul.halfEfficiencyRows, measuredOn: date)
    }

    /// A short calibration (1024³ GEMM, 384 MiB of reads) and this host's spec from it.
    public static func measureHost(progress: (String) -> Void = { _ in }) throws -> (HardwareSpec, CalibrationResult) {
        let c = try Calibration.run(gemmSize: 1024, triadElements: 32 * 1024 * 1024, repeats: 2, progress: progress)
        return (host(measured: c, measuredOn: "now"), c)
    }
}
