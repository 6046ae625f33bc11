import ArgumentParser
import ConfigFile
import Estimator
import Serving

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Run the estimator on a measurements file and print the error of each entry.",
        discussion: """
        FILE is a moesim-measurements/1 file (default: configs/validation/published.json, the \
        published measurements; configs/validation/serving.json holds the InferenceX serving \
        runs; configs/validation/energy.json holds published GPU power and energy figures (docs/energy.md). \
        The error is predicted / measured − 1. docs/validation.md explains where the remaining \
        error comes from.

        Examples:
          moesim validate
          moesim validate configs/validation/serving.json
          moesim validate configs/validation/energy.json
          moesim validate my-measurements.json --json
        """
    )

    @Argument(help: "Measurements file.")
    var file: String?

    @OptionGroup var output: OutputOptions

    func run() throws {
        let path: String
        if let file { path = file } else {
            guard let root = ConfigDirectory.locate() else {
                throw ValidationError("no configs folder found; pass a measurements FILE")
            }
            path = root + "/validation/published.json"
        }
        let report = try Validation.run(file: path)
        if output.json {
            var json: [String: Any] = ["file": path, "entries": report.entries.map { e -> [String: Any] in
                var entry: [String: Any] = ["id": e.id, "metric": e.metric, "measured": e.measured]
                if let p = e.predicted { entry["predicted"] = p }
                if let err = e.error { entry["error"] = err }
                if let s = e.skipped { entry["skipped"] = s }
                if let l = e.layout { entry["layout"] = l }
                if let b = e.bottleneck { entry["bottleneck"] = b }
                return entry
            }]
            if let m = report.medianAbsoluteError { json["median_abs_error"] = m }
            json["priced"] = report.entries.compactMap(\.error).count
            json["within_1_5x"] = report.within(1.5)
            json["within_2x"] = report.within(2)
            try Output.printJSON(json)
            return
        }
        // Latencies (metrics in seconds) print as times, power in watts, energy in joules, rates as rates.
        func value(_ v: Double, _ metric: String) -> String {
            if metric.hasSuffix("_s") { return Output.seconds(v) }
            if metric.hasPrefix("power_w") { return Output.fixed(v, 0) + " W" }
            if metric.hasPrefix("energy_j") { return EnergyOutput.joules(v) }
            return Output.rate(v)
        }
        Output.printColumns(header: ["entry", "measured", "predicted", "error", "bottleneck", "layout"], rows: report.entries.map { e in
            guard let p = e.predicted, let err = e.error else {
                return [e.id, value(e.measured, e.metric), "skipped", "", e.skipped ?? "", ""]
            }
            return [e.id, value(e.measured, e.metric), value(p, e.metric), (err >= 0 ? "+" : "") + Output.fixed(100 * err, 0) + "%",
                    e.bottleneck ?? "", e.layout ?? ""]
        })
        if let m = report.medianAbsoluteError {
            let priced = report.entries.compactMap(\.error).count
            print("median |error| \(Output.fixed(100 * m, 1))% over \(priced) entries; within 1.5×: \(report.within(1.5)) of \(priced), "
                + "within 2×: \(report.within(2)) of \(priced)")
            if let w = report.worst, let p = w.predicted {
                // Below a tenth, two decimals would print 0.00×: say "1/N of" instead (N at most a million).
                let ratio = p / w.measured
                let factor = ratio >= 0.1 ? "\(Output.fixed(ratio, 2))×"
                    : ratio >= 1e-6 ? "1/\(Output.fixed(1 / ratio, 0)) of" : "under 1/1,000,000 of"
                print("furthest: \(w.id), predicted \(factor) the measurement")
            }
        }
    }
}
