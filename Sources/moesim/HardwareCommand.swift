import ArgumentParser
import Hardware

struct HardwareList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hardware",
        abstract: "List the accelerator presets.",
        discussion: """
        Presets are configs/hardware/ID.json (schema moesim-hardware/1); each figure names its \
        source in the file. --gpu PATH takes your own file anywhere a preset id is accepted, and \
        `moesim calibrate --save host.json` writes one for this CPU.

        Examples:
          moesim hardware
          moesim hardware --json
        """
    )

    @OptionGroup var output: OutputOptions

    func run() throws {
        let ids = HardwareCatalog.presetIDs
        guard !ids.isEmpty else {
            throw ValidationError("no hardware presets found: run from the repository or set MOESIM_CONFIGS to its configs folder")
        }
        let specs = try ids.map { try HardwareCatalog.load($0) }
        if output.json {
            // Each entry as its file holds it (`HardwareSpec.jsonObject`), less the schema, the
            // latencies and the sources.
            let omitted: Set<String> = ["schema", "scale_up_latency", "scale_out_latency", "sources"]
            try Output.printJSON(["hardware": specs.map { $0.jsonObject.filter { !omitted.contains($0.key) } }])
            return
        }
        func tflops(_ g: HardwareSpec, _ format: String) -> String {
            g.peakFlops[format].map { Output.fixed($0 / 1e12, 0) } ?? "—"
        }
        let rows = specs.map { g in
            [g.id, Output.bytes(Double(g.memoryBytes)), Output.fixed(g.memoryBandwidth / 1e12, 2) + " TB/s",
             tflops(g, "bf16"), tflops(g, "fp8"), tflops(g, "fp4"),
             Output.fixed(g.scaleUpBandwidth / 1e9, 0) + " GB/s × \(g.scaleUpDomain)",
             Output.fixed(g.scaleOutBandwidth / 1e9, 0) + " GB/s", g.gpuHourPrice.map { "$" + Output.fixed($0, 2) } ?? "—",
             g.power.map { "\(Output.fixed($0.tdp, 0)) / \(Output.fixed($0.idle, 0)) W" } ?? "—"]
        }
        Output.printColumns(header: ["id", "memory", "bandwidth", "bf16 TF", "fp8 TF", "fp4 TF", "scale-up (one way)",
                                     "scale-out", "$/GPU-h", "TDP / idle"], rows: rows)
        print("  dense peak TFLOP/s; scale-up bandwidth per GPU one way × GPUs per domain; GB = 10⁹ bytes; "
            + "$/GPU-h on demand (docs/pricing.md); board power (docs/energy.md)")
    }
}
