import ConfigFile

/// Electrical power of one accelerator and of its share of the server around it, in watts: the
/// hardware file's optional `power` object. The estimator turns it into the power a step draws
/// (see `PowerModel` in the Estimator target); a file without it gets no energy figures.
public struct PowerSpec: Sendable, Equatable {
    /// Board power of an idle GPU with a model loaded (clocks parked, memory refreshing):
    /// what a GPU draws between steps.
    public var idle: Double
    /// The board's power limit (TDP / TGP / TBP): what sustained dense matrix products draw.
    public var tdp: Double
    /// Server power besides the GPUs (CPUs, DRAM, NICs, fans, switches, storage), per GPU.
    public var nodeOverheadPerGPU: Double
    /// Conversion loss on the GPUs' power (power supplies and regulators), as a fraction of it.
    public var conversionLoss: Double

    public init(idle: Double, tdp: Double, nodeOverheadPerGPU: Double, conversionLoss: Double) {
        self.idle = idle
        self.tdp = tdp
        self.nodeOverheadPerGPU = nodeOverheadPerGPU
        self.conversionLoss = conversionLoss
    }

    /// Reads `{"idle_w", "tdp_w", "node_overhead_w_per_gpu", "conversion_loss"}`; every figure is
    /// required, finite and in a physical range (a typo is an error naming the field).
    init(json p: JSONObject) throws {
        func watts(_ key: String, _ range: ClosedRange<Double>) throws -> Double {
            guard let value = try p.double(key) else { throw p.error(key, "is missing") }
            guard value.isFinite, range.contains(value) else {
                throw p.error(key, "must be in [\(Int(range.lowerBound)), \(Int(range.upperBound))] W, got \(value)")
            }
            return value
        }
        tdp = try watts("tdp_w", 1...100_000)
        idle = try watts("idle_w", 0...100_000)
        guard idle < tdp else { throw p.error("idle_w", "must be below tdp_w (\(tdp) W), got \(idle)") }
        nodeOverheadPerGPU = try watts("node_overhead_w_per_gpu", 0...100_000)
        guard let loss = try p.double("conversion_loss") else { throw p.error("conversion_loss", "is missing") }
        guard loss.isFinite, loss >= 0, loss < 1 else { throw p.error("conversion_loss", "must be in [0, 1), got \(loss)") }
        conversionLoss = loss
    }

    /// The file form (`power` of a hardware file).
    public var jsonObject: [String: Any] {
        ["idle_w": idle, "tdp_w": tdp, "node_overhead_w_per_gpu": nodeOverheadPerGPU, "conversion_loss": conversionLoss]
    }
}
