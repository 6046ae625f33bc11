import ArgumentParser
import Estimator
import Foundation
import Hardware
import Planner

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Sweep decode batch sizes: throughput per GPU against tokens/s per user, as CSV and SVG.",
        discussion: """
        For the best layout (or --layout, or every layout with --all-layouts), estimates decode
        batches 1, 2, 4, … up to the largest that fits, writes one CSV row per point and draws
        throughput per GPU against tokens/s per user in an SVG chart: the curve a capacity
        planner reads to pick a batch for a latency target.

        Examples:
          moesim sweep                                  kimi-k2 on 16 × H200 → sweep.csv, sweep.svg
          moesim sweep --model deepseek-v3 --gpus 32 --all-layouts --csv ds.csv --svg ds.svg
        """
    )

    @OptionGroup var deployment: DeploymentOptions
    @OptionGroup var workload: WorkloadOptions

    @Flag(help: "Sweep every layout that fits, not only the best.")
    var allLayouts = false

    @Option(help: "CSV output path.")
    var csv = "sweep.csv"

    @Option(help: "SVG chart output path.")
    var svg = "sweep.svg"

    @OptionGroup var output: OutputOptions

    func run() throws {
        let model = try deployment.loadModel()
        let cluster = try Cluster(gpu: try deployment.loadGPU(), gpuCount: deployment.gpuCount, gpusPerNode: deployment.gpusPerNode)
        var request = try workload.request(model: model, cluster: cluster, layout: try deployment.parsedLayout(),
                                           weights: deployment.weightFormat, kvCache: deployment.kvFormat)
        request.decodeBatchPerGPU = nil
        if !allLayouts && request.layout == nil {
            guard let best = LayoutSearch.search(request).best else {
                throw ValidationError("no layout of \(model.id) fits \(cluster.gpuCount) × \(cluster.gpu.id)")
            }
            request.layout = best.plan.layout
        }
        let points = LayoutSearch.search(request).all
        guard !points.isEmpty else { throw ValidationError("no layout of \(model.id) fits \(cluster.gpuCount) × \(cluster.gpu.id)") }
        var lines = ["layout,batch_per_gpu,output_tokens_per_s_per_gpu,output_tokens_per_s_per_user,tpot_s,ttft_s,input_tokens_per_s_per_gpu,cost_per_million_output_tokens"]
        for e in points {
            lines.append("\"\(e.plan.layout)\",\(e.decodeBatchPerGPU),\(e.outputTokensPerSecondPerGPU),\(e.outputTokensPerSecondPerUser),"
                + "\(e.timePerOutputToken),\(e.timeToFirstToken),\(e.inputTokensPerSecondPerGPU),\(e.costPerMillionOutputTokens ?? 0)")
        }
        let title = "\(model.id) on \(cluster.gpuCount) × \(cluster.gpu.id), \(deployment.weights), "
            + "\(workload.input) in / \(workload.output) out"
        do {
            try (lines.joined(separator: "\n") + "\n").write(toFile: csv, atomically: true, encoding: .utf8)
            try SweepChart.svg(points, title: title).write(toFile: svg, atomically: true, encoding: .utf8)
        } catch {
            throw ValidationError("cannot write \(csv) or \(svg): \(error.localizedDescription)")
        }
        if output.json {
            try Output.printJSON(["csv": csv, "svg": svg, "points": points.map { e -> [String: Any] in
                ["layout": e.plan.layout.description, "batch_per_gpu": e.decodeBatchPerGPU,
                 "output_tokens_per_s_per_gpu": e.outputTokensPerSecondPerGPU,
                 "output_tokens_per_s_per_user": e.outputTokensPerSecondPerUser, "tpot_s": e.timePerOutputToken]
            }])
            return
        }
        print(title)
        Output.printColumns(header: ["layout", "batch/GPU", "tok/s/GPU", "tok/s/user", "TPOT"], rows: points.map { e in
            [e.plan.layout.description, "\(e.decodeBatchPerGPU)", Output.rate(e.outputTokensPerSecondPerGPU),
             Output.rate(e.outputTokensPerSecondPerUser), Output.seconds(e.timePerOutputToken)]
        })
        print("wrote \(csv) and \(svg)")
    }
}

/// A dependency-free SVG scatter chart, one colour per layout, lines joining a layout's batches.
enum SweepChart {
    static func svg(_ points: [Estimate], title: String) -> String {
        let width = 720.0, height = 480.0, left = 80.0, right = 20.0, top = 40.0, bottom = 60.0
        let xs = points.map(\.outputTokensPerSecondPerUser), ys = points.map(\.outputTokensPerSecondPerGPU)
        let xMax = (xs.max() ?? 1) * 1.05, yMax = (ys.max() ?? 1) * 1.05
        func px(_ x: Double) -> Double { left + x / xMax * (width - left - right) }
        func py(_ y: Double) -> Double { height - bottom - y / yMax * (height - top - bottom) }
        let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(left)\" y=\"24\" font-size=\"14\">\(escape(title))</text>\n"
        for i in 0...5 {
            let x = xMax * Double(i) / 5, y = yMax * Double(i) / 5
            out += "<line x1=\"\(px(x))\" y1=\"\(py(0))\" x2=\"\(px(x))\" y2=\"\(py(yMax))\" stroke=\"#eee\"/>\n"
            out += "<line x1=\"\(px(0))\" y1=\"\(py(y))\" x2=\"\(px(xMax))\" y2=\"\(py(y))\" stroke=\"#eee\"/>\n"
            out += "<text x=\"\(px(x))\" y=\"\(height - bottom + 16)\" text-anchor=\"middle\">\(Int(x))</text>\n"
            out += "<text x=\"\(left - 6)\" y=\"\(py(y) + 4)\" text-anchor=\"end\">\(Int(y))</text>\n"
        }
        out += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 20)\" text-anchor=\"middle\">output tokens/s per user</text>\n"
        out += "<text transform=\"translate(18 \((top + height - bottom) / 2)) rotate(-90)\" text-anchor=\"middle\">output tokens/s per GPU</text>\n"
        let layouts = Array(Set(points.map { $0.plan.layout.description })).sorted()
        for (i, name) in layouts.enumerated() {
            let colour = palette[i % palette.count]
            let mine = points.filter { $0.plan.layout.description == name }.sorted { $0.decodeBatchPerGPU < $1.decodeBatchPerGPU }
            let path = mine.map { "\(px($0.outputTokensPerSecondPerUser)),\(py($0.outputTokensPerSecondPerGPU))" }.joined(separator: " ")
            out += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\"/>\n"
            for e in mine {
                out += "<circle cx=\"\(px(e.outputTokensPerSecondPerUser))\" cy=\"\(py(e.outputTokensPerSecondPerGPU))\" r=\"3\" fill=\"\(colour)\">"
                    + "<title>\(escape(name)) batch \(e.decodeBatchPerGPU)</title></circle>\n"
            }
            if i < 8 {
                out += "<text x=\"\(width - right - 4)\" y=\"\(top + 16 + Double(i) * 16)\" text-anchor=\"end\" fill=\"\(colour)\">\(escape(name))</text>\n"
            }
        }
        return out + "</svg>\n"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
