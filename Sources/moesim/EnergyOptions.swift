import ArgumentParser
import Estimator

/// Facility and grid for the energy and carbon figures (estimate, serve, sweep, compare, report).
struct EnergyOptions: ParsableArguments {
    @Option(help: "Data-centre PUE, facility power over IT power (default 1.3; see docs/energy.md).")
    var pue = EnergySettings.defaultPUE

    @Option(help: ArgumentHelp("Grid for the carbon figures: \(GridIntensity.table.map(\.name).joined(separator: ", ")) (default world).",
                               valueName: "region"))
    var grid: String?

    @Option(help: "Grid carbon intensity in gCO2e per kWh, instead of --grid.")
    var gridGco2PerKwh: Double?

    func validate() throws {
        guard pue.isFinite, pue >= 1, pue <= 5 else { throw ValidationError("--pue must be in [1, 5], got \(pue)") }
        if grid != nil, gridGco2PerKwh != nil { throw ValidationError("give --grid or --grid-gco2-per-kwh, not both") }
        if let grid, GridIntensity.named(grid) == nil {
            throw ValidationError("unknown --grid '\(grid)' (\(GridIntensity.table.map(\.name).joined(separator: ", ")))")
        }
        if let g = gridGco2PerKwh, !(g.isFinite && g >= 0 && g <= 2_000) {
            throw ValidationError("--grid-gco2-per-kwh must be 0 to 2,000, got \(g)")
        }
    }

    var settings: EnergySettings {
        if let g = gridGco2PerKwh { return EnergySettings(pue: pue, gridIntensity: g, gridName: "\(Output.fixed(g, 0)) g/kWh") }
        let named = grid.flatMap(GridIntensity.named) ?? .default
        return EnergySettings(pue: pue, gridIntensity: named.gramsPerKWh, gridName: named.name)
    }
}

/// The energy keys of every JSON answer, and the energy rows of the tables.
enum EnergyOutput {
    static func json(_ e: EnergyEstimate?) -> [String: Any] {
        guard let e else { return [:] }
        var json: [String: Any] = [
            "power_w_per_gpu": e.outputGPUWatts,
            "facility_power_w_per_gpu": e.watts(scope: .facility),
            "pue": e.settings.pue, "grid_gco2_per_kwh": e.settings.gridIntensity,
        ]
        if e.inputGPUWatts != e.outputGPUWatts { json["prefill_power_w_per_gpu"] = e.inputGPUWatts }
        if let j = e.joulesPerOutputToken() {
            json["energy_j_per_output_token"] = j
            json["kwh_per_million_output_tokens"] = EnergyEstimate.kWhPerMillion(joules: j)
            json["co2e_g_per_million_output_tokens"] = e.gramsPerMillion(joules: j)
        }
        if let j = e.joulesPerInputToken() {
            json["energy_j_per_input_token"] = j
            json["kwh_per_million_input_tokens"] = EnergyEstimate.kWhPerMillion(joules: j)
            json["co2e_g_per_million_input_tokens"] = e.gramsPerMillion(joules: j)
        }
        if let j = e.joulesPerRequest { json["kwh_per_request"] = j / 3.6e6 }
        return json
    }

    /// "power" and "energy" rows; none without power figures.
    static func rows(_ e: EnergyEstimate?) -> [(String, String)] {
        guard let e else { return [] }
        var power = "\(Output.fixed(e.outputGPUWatts, 0)) W per GPU"
        if e.inputGPUWatts != e.outputGPUWatts {
            power = "\(Output.fixed(e.outputGPUWatts, 0)) W per GPU decoding, \(Output.fixed(e.inputGPUWatts, 0)) W prefilling"
        }
        power += " (board); \(Output.fixed(e.watts(scope: .facility), 0)) W per GPU with the server and PUE \(Output.fixed(e.settings.pue, 2))"
        var rows = [("power", power)]
        var energy: [String] = []
        if let j = e.joulesPerOutputToken() {
            energy.append("\(joules(j)) per output token (\(kWh(j)), \(grams(e.gramsPerMillion(joules: j))) CO2e per million)")
        }
        if let j = e.joulesPerInputToken() {
            energy.append("\(joules(j)) per input token (\(kWh(j)), \(grams(e.gramsPerMillion(joules: j))) per million)")
        }
        if !energy.isEmpty { rows.append(("energy", energy.joined(separator: "; "))) }
        rows.append(("carbon", "grid \(e.settings.gridName), \(Output.fixed(e.settings.gridIntensity, 0)) gCO2e/kWh"
            + (e.joulesPerRequest.map { "; \(Output.fixed($0 / 3.6e3, 2)) Wh per request" } ?? "")))
        return rows
    }

    static func joules(_ j: Double) -> String { j >= 0.1 ? "\(Output.fixed(j, 2)) J" : "\(Output.fixed(j * 1e3, 1)) mJ" }
    static func kWh(_ joulesPerToken: Double) -> String {
        let k = EnergyEstimate.kWhPerMillion(joules: joulesPerToken)
        return k >= 1 ? "\(Output.fixed(k, 1)) kWh" : "\(Output.fixed(k * 1e3, 0)) Wh"
    }
    static func grams(_ g: Double) -> String { g >= 1000 ? "\(Output.fixed(g / 1000, 2)) kg" : "\(Output.fixed(g, 0)) g" }
}
