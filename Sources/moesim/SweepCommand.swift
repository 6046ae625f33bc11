import ArgumentParser
import Estimator
import Foundation
import Hardware
import ModelSpec
import Planner
import Serving

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Throughput per GPU against tokens/s per user over a sweep of concurrency (or decode batch), as CSV and SVG.",
        discussion: """
        With --concurrency 1,2,4,…: for each configuration (every --gpu × every --weights, each \
        disaggregated when --prefill-pool/--decode-pool are given), a closed-loop serving estimate \
        at each concurrency on the best layout for it (or --layout): the curves InferenceX \
        publishes. One series per configuration, its Pareto front drawn as a line.

        Without --concurrency: decode batches 1, 2, 4, … up to the largest that fits, in the \
        steady state, for the best layout (or --layout, or every layout with --all-layouts; the \
        chart then draws the layouts on the overall Pareto front, the CSV has every point).

        Examples:
          moesim sweep --model deepseek-r1 --gpus 8 --gpu h200-sxm,b200 \\
              --concurrency 4,8,16,32,64,128 --input 1024 --output 1024
          moesim sweep --model deepseek-r1 --gpus 8 --weights fp8,fp4 --gpu b200 \\
              --concurrency 1,4,16,64,256
          moesim sweep         # kimi-k2 on 16 × H200, decode batches: sweep.csv, .svg
        """
    )

    @Option(help: "Model preset id, config.json path or model folder.")
    var model = "kimi-k2"

    @Option(help: "Comma-separated accelerator presets.")
    var gpu = "h200-sxm"

    @Option(help: "Number of GPUs (default 16; with disaggregated pools, their sum).")
    var gpus: Int?

    @Option(help: "Comma-separated weight formats.")
    var weights = "fp8"

    @Option(help: "KV-cache format: bf16 or fp8.")
    var kvCache: KVCacheFormat = .bf16

    @Option(help: "Layout, e.g. attention=dp,tp=1,ep=16,pp=1 (default: the best for each point).")
    var layout: String?

    @Option(help: "Comma-separated concurrencies (closed loop), e.g. 1,2,4,8,16,32,64.")
    var concurrency: String?

    @OptionGroup var policy: ServingPolicyOptions
    @OptionGroup var memory: MemoryReserveOption

    @Flag(help: "Steady-state sweep of every layout that fits, not only the best.")
    var allLayouts = false

    @Option(help: "CSV output path.")
    var csv = "sweep.csv"

    @Option(help: "SVG chart output path.")
    var svg = "sweep.svg"

    @OptionGroup var workload: WorkloadOptions
    @OptionGroup var overrides: OverrideOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let gpus, gpus < 1 { throw ValidationError("--gpus must be at least 1") }
        _ = try weightFormats(weights)
        _ = try concurrencies()
        if concurrency == nil, policy.isSet {
            throw ValidationError(ServingPolicyOptions.needsConcurrency)
        }
        if concurrency != nil, allLayouts { throw ValidationError("--all-layouts is for the steady-state sweep (without --concurrency)") }
        try policy.checkRouterHasPools()
    }

    func concurrencies() throws -> [Int]? {
        guard let concurrency else { return nil }
        let values = concurrency.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 1_000_000 }), values.count <= 64 else {
            throw ValidationError("--concurrency must be 1 to 64 comma-separated integers from 1 to 1,000,000, got '\(concurrency)'")
        }
        return values.compactMap { $0 }
    }

    struct Configuration {
        var label: String
        var hardware: HardwareSpec
        var format: WeightFormat
    }

    func configurations() throws -> [Configuration] {
        var out: [Configuration] = []
        let formats = try weightFormats(weights)
        for id in gpu.split(separator: ",").map(String.init) {
            let hardware = try HardwareCatalog.load(id)
            for format in formats { out.append(Configuration(label: hardware.id, hardware: hardware, format: format)) }
        }
        if out.count > 1 { for i in out.indices { out[i].label = "\(out[i].hardware.id) \(out[i].format.rawValue)" } }
        return out
    }

    func run() throws {
        let spec = try overrides.load(model)
        let configs = try configurations()
        if let levels = try concurrencies() {
            try servingSweep(spec, configs: configs, levels: levels)
        } else {
            guard configs.count == 1, let config = configs.first else {
                throw ValidationError("the steady-state sweep takes one --gpu and one --weights; give --concurrency to compare several")
            }
            try batchSweep(spec, config: config)
        }
    }

    /// Closed-loop estimates at each concurrency for each configuration.
    func servingSweep(_ spec: ModelSpec, configs: [Configuration], levels: [Int]) throws {
        let pools = try policy.parsedPools()
        let count = gpus ?? pools.map { $0.prefill.gpus + $0.decode.gpus } ?? 16
        var lines = ["configuration,concurrency,layout,output_tokens_per_s_per_gpu,output_tokens_per_s_per_user,total_tokens_per_s_per_gpu,"
            + "ttft_s,ttft_p90_s,tpot_s,tpot_p90_s,cost_per_million_output_tokens,power_w_per_gpu,energy_j_per_output_token"]
        var series: [Chart.Series] = []
        var json: [[String: Any]] = []
        var table: [[String]] = []
        for config in configs {
            let cluster = try Cluster(gpu: config.hardware, gpuCount: count, wholeNodes: pools == nil)
            var base = try workload.request(model: spec, cluster: cluster, layout: try layout.map(Layout.parse), weights: config.format,
                                            kvCache: kvCache)
            base.memoryReserve = memory.reserve
            var points: [(x: Double, y: Double)] = []
            for n in levels {
                let r = try policy.request(base: base, concurrency: n)
                let e: ServingEstimate
                do {
                    e = base.layout == nil && pools == nil ? try ServingEstimator.best(r, maxTTFT: nil, maxTPOT: nil) : try ServingEstimator.estimate(r)
                } catch {
                    if !output.json { Output.progress("\(config.label) at concurrency \(n): \(error)") }
                    continue
                }
                let cut = e.deployment
                lines.append("\"\(config.label)\",\(n),\"\(cut)\",\(e.outputTokensPerSecondPerGPU),\(e.outputTokensPerSecondPerUser),"
                    + "\(e.totalTokensPerSecondPerGPU),\(e.ttft.median),\(e.ttft.p90),\(e.tpot.median),\(e.tpot.p90),"
                    + "\(e.costPerMillionOutputTokens ?? 0),\(csvField(e.energy?.outputGPUWatts)),"
                    + "\(csvField(e.energy?.joulesPerOutputToken()))")
                points.append((e.outputTokensPerSecondPerUser, e.outputTokensPerSecondPerGPU))
                var point: [String: Any] = ["configuration": config.label, "concurrency": n, "layout": cut,
                                            "output_tokens_per_s_per_gpu": e.outputTokensPerSecondPerGPU,
                                            "output_tokens_per_s_per_user": e.outputTokensPerSecondPerUser, "ttft_p90_s": e.ttft.p90,
                                            "tpot_p90_s": e.tpot.p90]
                point.merge(EnergyOutput.json(e.energy)) { a, _ in a }
                json.append(point)
                table.append([config.label, Output.grouped(n), cut, Output.rate(e.outputTokensPerSecondPerGPU),
                              Output.rate(e.outputTokensPerSecondPerUser), Output.seconds(e.ttft.p90), Output.seconds(e.tpot.p90),
                              e.energy?.joulesPerOutputToken().map(EnergyOutput.joules) ?? "—"])
            }
            series.append(Chart.Series(name: "\(config.label) (Pareto front)", points: LayoutSearch.paretoFront(points, perUser: \.x, perGPU: \.y)))
        }
        guard !table.isEmpty else { throw ValidationError("no concurrency of the sweep could be served (see moesim plan)") }
        let title = "\(spec.id) on \(count) GPUs, \(workload.input) in / \(workload.output) out, concurrency \(concurrency ?? "")"
        let chart = Chart(title: title, xLabel: "output tokens/s per user", yLabel: "output tokens/s per GPU", series: series)
        try OutputFile.write(lines.joined(separator: "\n") + "\n", to: csv)
        try OutputFile.write(chart.svg(), to: svg)
        if output.json {
            try Output.printJSON(["csv": csv, "svg": svg, "points": json])
            return
        }
        print(title)
        Output.printColumns(header: ["configuration", "concurrency", "layout", "tok/s/GPU", "tok/s/user", "TTFT p90", "TPOT p90", "energy/token"],
                            rows: table)
        print("wrote \(csv) and \(svg)")
    }

    /// The steady-state sweep over decode batches.
    func batchSweep(_ spec: ModelSpec, config: Configuration) throws {
        let cluster = try Cluster(gpu: config.hardware, gpuCount: gpus ?? 16)
        var request = try workload.request(model: spec, cluster: cluster, layout: try layout.map(Layout.parse), weights: config.format,
                                           kvCache: kvCache)
        request.decodeBatchPerGPU = nil
        request.memoryReserve = memory.reserve
        if !allLayouts && request.layout == nil {
            guard let best = LayoutSearch.search(request).best else {
                throw ValidationError("no layout of \(spec.id) fits \(cluster.gpuCount) × \(cluster.gpu.id)")
            }
            request.layout = best.plan.layout
        }
        let result = LayoutSearch.search(request)
        let points = result.all
        guard !points.isEmpty else { throw ValidationError("no layout of \(spec.id) fits \(cluster.gpuCount) × \(cluster.gpu.id)") }
        var lines = ["layout,batch_per_gpu,output_tokens_per_s_per_gpu,output_tokens_per_s_per_user,tpot_s,ttft_s,input_tokens_per_s_per_gpu,"
            + "cost_per_million_output_tokens,power_w_per_gpu,energy_j_per_output_token"]
        for e in points {
            lines.append("\"\(e.plan.layout)\",\(e.decodeBatchPerGPU),\(e.outputTokensPerSecondPerGPU),\(e.outputTokensPerSecondPerUser),"
                + "\(e.timePerOutputToken),\(e.timeToFirstToken),\(e.inputTokensPerSecondPerGPU),\(e.costPerMillionOutputTokens ?? 0),"
                + "\(csvField(e.energy?.outputGPUWatts)),\(csvField(e.energy?.joulesPerOutputToken()))")
        }
        let title = "\(spec.id) on \(cluster.gpuCount) × \(cluster.gpu.id), \(config.format.rawValue), "
            + "\(workload.input) in / \(workload.output) out, steady state by decode batch"
        // One series per layout on the overall Pareto front (every point is in the CSV).
        let onFront = Set(result.pareto.map { $0.plan.layout.description })
        let series = onFront.sorted().map { name in
            Chart.Series(name: name, points: points.filter { $0.plan.layout.description == name }
                .sorted { $0.decodeBatchPerGPU < $1.decodeBatchPerGPU }
                .map { ($0.outputTokensPerSecondPerUser, $0.outputTokensPerSecondPerGPU) })
        }
        try OutputFile.write(lines.joined(separator: "\n") + "\n", to: csv)
        try OutputFile.write(Chart(title: title, xLabel: "output tokens/s per user", yLabel: "output tokens/s per GPU", series: series).svg(),
                             to: svg)
        if output.json {
            try Output.printJSON(["csv": csv, "svg": svg, "points": points.map { e -> [String: Any] in
                var point: [String: Any] = ["layout": e.plan.layout.description, "batch_per_gpu": e.decodeBatchPerGPU,
                                            "output_tokens_per_s_per_gpu": e.outputTokensPerSecondPerGPU,
                                            "output_tokens_per_s_per_user": e.outputTokensPerSecondPerUser, "tpot_s": e.timePerOutputToken]
                point.merge(EnergyOutput.json(e.energy)) { a, _ in a }
                return point
            }])
            return
        }
        print(title)
        Output.printColumns(header: ["layout", "batch/GPU", "tok/s/GPU", "tok/s/user", "TPOT", "W/GPU", "energy/token"], rows: points.map { e in
            [e.plan.layout.description, "\(e.decodeBatchPerGPU)", Output.rate(e.outputTokensPerSecondPerGPU),
             Output.rate(e.outputTokensPerSecondPerUser), Output.seconds(e.timePerOutputToken),
             e.energy.map { Output.fixed($0.outputGPUWatts, 0) } ?? "—", e.energy?.joulesPerOutputToken().map(EnergyOutput.joules) ?? "—"]
        })
        if allLayouts { print("the chart draws the \(series.count) layouts on the Pareto front; the CSV has all \(points.count) points") }
        print("wrote \(csv) and \(svg)")
    }
}

/// A CSV field: the number, or empty when there is none (a hardware file without power figures).
private func csvField(_ value: Double?) -> String { value.map { "\($0)" } ?? "" }
