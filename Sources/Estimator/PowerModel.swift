import Hardware

/// Where a measured or estimated energy figure stops: the GPU boards (what NVML / rocm-smi read),
/// the servers' IT power (boards plus conversion loss plus CPUs, NICs, fans: what a wall meter or
/// MLPerf Power reads), or the data centre (IT power times PUE).
public enum EnergyScope: String, Sendable, CaseIterable {
    case gpu, node, facility
}

/// The power one GPU draws in a step, from where the step's time goes.
///
/// A GPU's board power moves between its idle power and its power limit with what it does. Over a
/// step of the estimator's time split (compute-bound operators, memory-bound operators, exposed
/// communication, launch overhead) it is
///
///     P = idle + (TDP − idle) × Σ activityᵢ × tᵢ / T
///
/// with one activity per kind of time, a property of how GPUs spend power, not of one GPU:
/// - compute-bound: 1. Sustained dense matrix products run GPUs at their power limit (Patel et al.,
///   "Splitwise", ISCA 2024: the prompt phase of Llama-2-70B and BLOOM-176B on 8 × H100 draws close
///   to TDP; "POLCA", ASPLOS 2024: training-like GEMMs sit at the cap).
/// - memory-bound: 0.5. Streaming HBM keeps the memory system and the load units busy while the
///   tensor cores mostly wait: Splitwise measures the token phase well under TDP and barely
///   slowed by a 50% power cap; ML.ENERGY's H100 decode at small batch draws 300–400 W of 700.
/// - communication: 0.25. NCCL and all-to-all kernels use a few SMs and the links; the rest idle.
/// - overhead (launch gaps, the CPU-side scheduler): 0.15, close to idle with clocks up.
/// These four are the only constants; `docs/energy.md` checks them on published figures.
public enum PowerModel {
    public static let computeActivity = 1.0
    public static let memoryActivity = 0.5
    public static let communicationActivity = 0.25
    public static let overheadActivity = 0.15

    /// Average board power of one GPU over `step`, in watts.
    public static func gpuWatts(_ step: StepTime, _ power: PowerSpec) -> Double {
        let total = step.total
        guard total > 0, total.isFinite else { return power.idle }
        let activity = (computeActivity * step.compute + memoryActivity * step.memory
            + communicationActivity * step.communication + overheadActivity * step.overhead) / total
        return power.idle + (power.tdp - power.idle) * min(max(activity, 0), 1)
    }

    /// Power per GPU at `scope` for a GPU board drawing `gpuWatts`.
    public static func watts(gpuWatts: Double, _ power: PowerSpec, scope: EnergyScope, pue: Double) -> Double {
        switch scope {
        case .gpu: gpuWatts
        case .node: gpuWatts * (1 + power.conversionLoss) + power.nodeOverheadPerGPU
        case .facility: (gpuWatts * (1 + power.conversionLoss) + power.nodeOverheadPerGPU) * pue
        }
    }
}

/// What turns energy into carbon, and the facility around the servers.
public struct EnergySettings: Sendable, Equatable {
    /// Power usage effectiveness: facility power over IT power.
    public var pue: Double
    /// Grid carbon intensity, grams CO2-equivalent per kWh, and where it comes from.
    public var gridIntensity: Double
    public var gridName: String

    public init(pue: Double = Self.defaultPUE, gridIntensity: Double = GridIntensity.default.gramsPerKWh,
                gridName: String = GridIntensity.default.name) {
        self.pue = pue
        self.gridIntensity = gridIntensity
        self.gridName = gridName
    }

    /// 1.3: the facility factor of InferenceX's system power model for AI data centres (a modern
    /// liquid- or air-cooled GPU hall; the industry-wide average is higher, about 1.56 in Uptime
    /// Institute's 2024 survey, hyperscalers report 1.1). Pass `--pue` for yours.
    public static let defaultPUE = 1.3

    /// Refuses a PUE below 1 or past 5 and an intensity past 2,000 g/kWh (no grid is dirtier
    /// than coal, about 1,000).
    public func check() throws {
        guard pue.isFinite, pue >= 1, pue <= 5 else { throw EstimateError.invalid("the PUE must be in [1, 5], got \(pue)") }
        guard gridIntensity.isFinite, gridIntensity >= 0, gridIntensity <= 2_000 else {
            throw EstimateError.invalid("the grid intensity must be 0 to 2,000 gCO2e/kWh, got \(gridIntensity)")
        }
    }
}

/// Energy of an answer: the GPUs' average board power and the facility energy per token.
///
/// Each rate carries the power that produces it: in a steady-state estimate, the decode step's
/// power for output tokens and the prefill step's for input tokens (a GPU doing only that phase,
/// as the cost per million tokens is counted); in a serving estimate, the deployment's average
/// power (steps and idle time, every GPU) for both, so each kind of token is charged the whole
/// bill, again as the cost is.
public struct EnergyEstimate: Sendable, Equatable {
    public var power: PowerSpec
    public var settings: EnergySettings
    /// Average board power per GPU while producing output tokens, and input tokens.
    public var outputGPUWatts: Double
    public var inputGPUWatts: Double
    public var outputTokensPerSecondPerGPU: Double
    public var inputTokensPerSecondPerGPU: Double
    /// Facility joules of one request: its prompt and answer at the rates above (steady state),
    /// or the deployment's energy over its completions (serving).
    public var joulesPerRequest: Double?

    public init(power: PowerSpec, settings: EnergySettings, outputGPUWatts: Double, inputGPUWatts: Double,
                outputTokensPerSecondPerGPU: Double, inputTokensPerSecondPerGPU: Double, joulesPerRequest: Double? = nil) {
        self.power = power
        self.settings = settings
        self.outputGPUWatts = outputGPUWatts
        self.inputGPUWatts = inputGPUWatts
        self.outputTokensPerSecondPerGPU = outputTokensPerSecondPerGPU
        self.inputTokensPerSecondPerGPU = inputTokensPerSecondPerGPU
        self.joulesPerRequest = joulesPerRequest
    }

    /// Power per GPU at `scope` while producing output tokens.
    public func watts(scope: EnergyScope) -> Double {
        PowerModel.watts(gpuWatts: outputGPUWatts, power, scope: scope, pue: settings.pue)
    }

    /// Joules per output token at `scope` (facility unless said); nil without output.
    public func joulesPerOutputToken(scope: EnergyScope = .facility) -> Double? {
        outputTokensPerSecondPerGPU > 0 ? watts(scope: scope) / outputTokensPerSecondPerGPU : nil
    }

    public func joulesPerInputToken(scope: EnergyScope = .facility) -> Double? {
        inputTokensPerSecondPerGPU > 0
            ? PowerModel.watts(gpuWatts: inputGPUWatts, power, scope: scope, pue: settings.pue) / inputTokensPerSecondPerGPU : nil
    }

    /// kWh per million tokens: J × 10⁶ / 3.6 × 10⁶.
    public static func kWhPerMillion(joules: Double) -> Double { joules / 3.6 }

    /// Grams CO2e per million tokens at the settings' grid.
    public func gramsPerMillion(joules: Double) -> Double { Self.kWhPerMillion(joules: joules) * settings.gridIntensity }
}
