import ArgumentParser
import Foundation
import TensorCore

@main
struct Moesim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moesim",
        abstract: "Simulate inference of trillion-parameter Mixture-of-Experts models.",
        discussion: """
        moesim sizes MoE models (Kimi K2, DeepSeek-V3, Qwen3, Llama 4, Mixtral, gpt-oss, …) from their HuggingFace config.json, plans them onto GPU clusters, estimates their throughput, latency and cost, and runs scaled-down copies on this CPU.

        Examples:
          moesim report                  # the main job: Kimi K2 on H200 nodes
          moesim inspect kimi-k2 --set n_routed_experts=512
          moesim plan --model deepseek-v3 --gpu h100-sxm --gpus 8
          moesim estimate --model kimi-k2 --gpus 32 --max-tpot 0.05
          moesim estimate --model deepseek-r1 --gpus 8 --concurrency 64 --input 1024
          moesim serve --rate 20 --requests 5000 --slo-ttft 1 --slo-tpot 0.05
          moesim capacity --users 512 --slo-ttft 2 --slo-tpot 0.05
          moesim compare --model kimi-k2,qwen3-max-1t --gpu h200-sxm,b200
          moesim validate
          moesim bench kimi-k2
          moesim calibrate --save host.json
        """,
        version: "0.1.0",
        subcommands: [Models.self, Inspect.self, HardwareList.self, PlanCommand.self, EstimateCommand.self,
                      ServeCommand.self, CapacityCommand.self, ValidateCommand.self, CompareCommand.self, SweepCommand.self, ReportCommand.self, BenchCommand.self,
                      GenerateCommand.self, Calibrate.self]
    )

    /// Parses, runs, and reports errors as one `error:` line on stderr with a non-zero exit; a
    /// command line that does not parse adds the usage of its subcommand.
    static func main() {
        BLASCore.reexecWithOptimizedKernelsIfNeeded()
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            fail(error, usage: subcommandUsage())
        }
        do {
            try PanelMatrix.Kernels.checkEnvironment()
            try command.run()
        } catch {
            fail(error, usage: nil)
        }
    }

    static func fail(_ error: Error, usage: String?) -> Never {
        let code = exitCode(for: error)
        if code == .success {
            print(fullMessage(for: error))
            Foundation.exit(0)
        }
        // One line: ArgumentParser's list of choices ("- bf16" lines) joins the first line.
        let lines = message(for: error).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .map { $0.hasPrefix("- ") ? String($0.dropFirst(2)) : $0 }
        var message = (lines.first ?? "") + (lines.count > 1 ? " " + lines.dropFirst().joined(separator: ", ") : "")
        if message.hasPrefix("Error: ") { message = String(message.dropFirst("Error: ".count)) }
        if !message.hasPrefix("error:") { message = "error: " + message }
        let text = message + (usage.map { "\n" + $0 } ?? "")
        FileHandle.standardError.write(Data((text + "\n").utf8))
        Foundation.exit(code == .validationFailure ? code.rawValue : 1)
    }

    /// The usage line of the subcommand named on the command line, or the root's.
    static func subcommandUsage() -> String {
        let name = CommandLine.arguments.dropFirst().first ?? ""
        let sub = configuration.subcommands.first { $0.configuration.commandName == name }
        let usage = sub.map { "moesim " + $0.usageString() } ?? usageString()
        return "usage: " + usage.trimmingCharacters(in: .whitespacesAndNewlines) + " (moesim help \(sub == nil ? "" : name + " ")for more)"
    }
}
