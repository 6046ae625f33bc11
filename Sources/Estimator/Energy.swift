import Hardware

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
