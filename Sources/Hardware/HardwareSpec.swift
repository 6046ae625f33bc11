import ConfigFile
import Foundation

/// One accelerator (or a CPU host) with its node and network, as stored in
/// `configs/hardware/ID.json` (schema `moesim-hardware/1`). Units: bytes, bytes/s, FLOP/s, seconds.
public struct HardwareSpec: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable { case gpu, cpu }

    /// Achievable fractions of the peak figures. They belong to a kind of hardware, each documented
    /// in its file's `sources`, and are never fitted to one measurement.
    public struct Efficiency: Sendable, Equatable {
        public var matmul: Double
        public var memory: Double
        public var scaleUp: Double
        public var scaleOut: Double
        /// Rows at which a GEMM reaches half its large-GEMM efficiency (`half_efficiency_rows`,
        /// optional): a property of the kernels that run on this hardware. Absent, the estimator
        /// uses its default for the hardware kind (`Estimator.Efficiency.halfEfficiencyRows`).
        public var halfEfficiencyRows: Double?
        /// Large-GEMM fraction of the FP8 peak for FP8 GEMMs with a scale per 128 × 128 block
        /// (`block_scaled_fp8_matmul`, optional): on hardware whose tensor cores cannot apply
        /// block scales themselves (Hopper) the kernels promote partial sums on CUDA cores every
        /// 128 values of K, which costs throughput. Absent: `matmul` applies.
        public var blockScaledFP8Matmul: Double?

        public init(matmul: Double, memory: Double, scaleUp: Double, scaleOut: Double, halfEfficiencyRows: Double? = nil,
                    blockScaledFP8Matmul: Double? = nil) {
            self.matmul = matmul
            self.memory = memory
            self.scaleUp = scaleUp
            self.scaleOut = scaleOut
            self.halfEfficiencyRows = halfEfficiencyRows
            self.blockScaledFP8Matmul = blockScaledFP8Matmul
        }
    }

    public var id: String
    public var name: String
    public var kind: Kind
    public var memoryBytes: Int
    /// Memory bandwidth, bytes/s.
    public var memoryBandwidth: Double
    /// Dense peak FLOP/s per number format ("fp32", "bf16", "fp8", "fp4", "int8").
    public var peakFlops: [String: Double]
    /// Scale-up (NVLink, Infinity Fabric) bandwidth per GPU, one way, bytes/s.
    public var scaleUpBandwidth: Double
    /// GPUs in one scale-up domain (8 for HGX boards, 72 for NVL72 racks, 1 for a CPU host).
    public var scaleUpDomain: Int
    public var scaleUpLatency: Double
    /// Scale-out (InfiniBand, RoCE) bandwidth per GPU, one way, bytes/s.
    public var scaleOutBandwidth: Double
    public var scaleOutLatency: Double
    public var efficiency: Efficiency
    /// Default rental price in USD per GPU-hour, if the file gives one.
    public var gpuHourPrice: Double?
    /// Power of the GPU and its share of the server (`power`, optional): energy figures need it.
    public var power: PowerSpec?
    /// For a CPU host from `moesim calibrate --save`: the threads it was measured with (`threads`,
    /// optional), so that a run on another thread count can say its prediction does not apply.
    public var threads: Int?
    /// Fixed time of one expert-parallel dispatch and one combine kernel inside the scale-up domain
    /// (`all_to_all_latency`, optional, seconds): a few tokens per rank already cost this much
    /// (kernel launch, flag exchange across the fabric). Absent: the link's `scale_up_latency`.
    public var allToAllLatency: AllToAllLatency?
    /// Streaming multiprocessors of one GPU (`sm_count`, optional): communication kernels that run
    /// on SMs (DeepEP's normal mode) take some from the computation they overlap. Absent: that
    /// contention is not priced.
    public var smCount: Int?
    /// Fixed time of one kernel of a captured graph: launch, ramp and tail (`kernel_overhead`,
    /// optional, seconds). Absent: 4 µs on a GPU, 2 µs on a CPU (`Efficiency.kernelOverhead`).
    public var kernelOverhead: Double?
    /// Where each figure comes from, by field name.
    public var sources: [String: String]

    public struct AllToAllLatency: Sendable, Equatable {
        public var dispatch: Double
        public var combine: Double
        public init(dispatch: Double, combine: Double) {
            self.dispatch = dispatch
            self.combine = combine
        }
    }

    public static let schema = "moesim-hardware/1"
    public static let formats = ["fp32", "bf16", "fp8", "fp4", "int8"]

    public init(id: String, name: String, kind: Kind, memoryBytes: Int, memoryBandwidth: Double,
                peakFlops: [String: Double], scaleUpBandwidth: Double, scaleUpDomain: Int,
                scaleUpLatency: Double, scaleOutBandwidth: Double, scaleOutLatency: Double,
                efficiency: Efficiency, gpuHourPrice: Double?, power: PowerSpec? = nil, sources: [String: String]) {
        self.id = id
        self.name = name
        self.kind = kind
        self.memoryBytes = memoryBytes
        self.memoryBandwidth = memoryBandwidth
        self.peakFlops = peakFlops
        self.scaleUpBandwidth = scaleUpBandwidth
        self.scaleUpDomain = scaleUpDomain
        self.scaleUpLatency = scaleUpLatency
        self.scaleOutBandwidth = scaleOutBandwidth
        self.scaleOutLatency = scaleOutLatency
        self.efficiency = efficiency
        self.gpuHourPrice = gpuHourPrice
        self.power = power
        self.sources = sources
    }

    /// Reads and validates a hardware file; every problem names the field.
    public init(json: JSONObject) throws {
        if let schema = try json.string("schema"), schema != Self.schema {
            throw json.error("schema", "must be \"\(Self.schema)\", got \"\(schema)\"")
        }
        id = try json.requiredString("id")
        name = try json.string("name") ?? id
        let kindText = try json.string("kind") ?? "gpu"
        guard let kind = Kind(rawValue: kindText) else {
            throw json.error("kind", "must be \"gpu\" or \"cpu\", got \"\(kindText)\"")
        }
        self.kind = kind
        // Physical ranges, far around any real device: sizes and rates outside them are typos,
        // and inside them every figure derived later stays finite and inside 64-bit integers.
        memoryBytes = try json.requiredInt("memory_bytes", atLeast: 1 << 20)
        guard memoryBytes <= 1 << 50 else { throw json.error("memory_bytes", "must be at most 2^50 (1 PiB), got \(memoryBytes)") }
        memoryBandwidth = try Self.ranged(json, "memory_bandwidth", 1e6...1e16, required: true)
        guard let flops = try json.object("peak_flops") else { throw json.error("peak_flops", "is missing") }
        var peaks: [String: Double] = [:]
        for key in flops.values.keys where flops.has(key) {
            guard Self.formats.contains(key) else {
                throw flops.error(key, "is not a known number format (\(Self.formats.joined(separator: ", ")))")
            }
            peaks[key] = try Self.ranged(flops, key, 1e6...1e19, required: true)
        }
        guard !peaks.isEmpty else { throw json.error("peak_flops", "must give at least one format") }
        peakFlops = peaks
        scaleUpDomain = try json.requiredInt("scale_up_domain", atLeast: 1)
        guard scaleUpDomain <= 65_536 else { throw json.error("scale_up_domain", "must be at most 65,536, got \(scaleUpDomain)") }
        // A link that carries traffic must have bandwidth; one that does not may give 0.
        scaleUpBandwidth = try Self.ranged(json, "scale_up_bandwidth", (scaleUpDomain > 1 ? 1e6 : 0)...1e16,
                                           required: scaleUpDomain > 1)
        scaleUpLatency = try Self.ranged(json, "scale_up_latency", 0...1, required: false)
        scaleOutBandwidth = try Self.ranged(json, "scale_out_bandwidth", (kind == .gpu ? 1e6 : 0)...1e16, required: kind == .gpu)
        scaleOutLatency = try Self.ranged(json, "scale_out_latency", 0...1, required: false)
        guard let e = try json.object("efficiency") else { throw json.error("efficiency", "is missing") }
        efficiency = Efficiency(matmul: try Self.fraction(e, "matmul"), memory: try Self.fraction(e, "memory"),
                                scaleUp: try Self.fraction(e, "scale_up"), scaleOut: try Self.fraction(e, "scale_out"),
                                halfEfficiencyRows: e.has("half_efficiency_rows") ? try Self.ranged(e, "half_efficiency_rows", 1e-3...1e6, required: true) : nil,
                                blockScaledFP8Matmul: e.has("block_scaled_fp8_matmul") ? try Self.fraction(e, "block_scaled_fp8_matmul") : nil)
        threads = json.has("threads") ? try json.requiredInt("threads", atLeast: 1) : nil
        if let threads, threads > 4096 { throw json.error("threads", "must be at most 4,096, got \(threads)") }
        if let a = try json.object("all_to_all_latency") {
            allToAllLatency = AllToAllLatency(dispatch: try Self.ranged(a, "dispatch", 0...1, required: true),
                                              combine: try Self.ranged(a, "combine", 0...1, required: true))
        }
        smCount = json.has("sm_count") ? try json.requiredInt("sm_count", atLeast: 1) : nil
        kernelOverhead = json.has("kernel_overhead") ? try Self.ranged(json, "kernel_overhead", 0...1e-3, required: true) : nil
        if let smCount, smCount > 100_000 { throw json.error("sm_count", "must be at most 100,000, got \(smCount)") }
        if json.has("gpu_hour_price") {
            gpuHourPrice = try Self.ranged(json, "gpu_hour_price", 1e-6...1e6, required: true)
        } else {
            gpuHourPrice = nil
        }
        power = try json.object("power").map(PowerSpec.init(json:))
        var sources: [String: String] = [:]
        if let s = try json.object("sources") {
            for key in s.values.keys { sources[key] = try s.string(key) }
        }
        self.sources = sources
    }

    /// Reads a hardware file from disk.
    public init(contentsOf path: String) throws {
        try self.init(json: JSONObject(contentsOf: path))
    }

    /// A number within `range` (0 when absent and not required).
    private static func ranged(_ json: JSONObject, _ key: String, _ range: ClosedRange<Double>, required: Bool) throws -> Double {
        guard let value = try json.double(key) else {
            if required { throw json.error(key, "is missing") }
            return 0
        }
        guard range.contains(value) else {
            throw json.error(key, "must be in [\(String(format: "%g", range.lowerBound)), \(String(format: "%g", range.upperBound))], got \(value)")
        }
        return value
    }

    private static func fraction(_ json: JSONObject, _ key: String) throws -> Double {
        guard let value = try json.double(key) else { throw json.error(key, "is missing") }
        guard value > 0, value <= 1 else { throw json.error(key, "must be in (0, 1], got \(value)") }
        return value
    }

    /// The file form, keys in snake_case, ready for `JSONSerialization`.
    public var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "schema": Self.schema, "id": id, "name": name, "kind": kind.rawValue,
            "memory_bytes": memoryBytes, "memory_bandwidth": memoryBandwidth, "peak_flops": peakFlops,
            "scale_up_bandwidth": scaleUpBandwidth, "scale_up_domain": scaleUpDomain,
            "scale_up_latency": scaleUpLatency, "scale_out_bandwidth": scaleOutBandwidth,
            "scale_out_latency": scaleOutLatency,
            "sources": sources,
        ]
        var e: [String: Any] = ["matmul": efficiency.matmul, "memory": efficiency.memory,
                                "scale_up": efficiency.scaleUp, "scale_out": efficiency.scaleOut]
        if let rows = efficiency.halfEfficiencyRows { e["half_efficiency_rows"] = rows }
        if let f = efficiency.blockScaledFP8Matmul { e["block_scaled_fp8_matmul"] = f }
        object["efficiency"] = e
        if let gpuHourPrice { object["gpu_hour_price"] = gpuHourPrice }
        if let threads { object["threads"] = threads }
        if let smCount { object["sm_count"] = smCount }
        if let kernelOverhead { object["kernel_overhead"] = kernelOverhead }
        if let a = allToAllLatency { object["all_to_all_latency"] = ["dispatch": a.dispatch, "combine": a.combine] }
        if let power { object["power"] = power.jsonObject }
        return object
    }

    /// Pretty-printed JSON with sorted keys.
    public func encoded() throws -> Data {
        try JSONSerialization.data(withJSONObject: jsonObject, options: [.prettyPrinted, .sortedKeys])
    }
}
