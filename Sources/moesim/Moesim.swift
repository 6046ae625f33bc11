import ArgumentParser
import Foundation
import TensorCore

@main
struct Moesim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moesim",
        abstract: "Simulate inference of trillion-parameter Mixture-of-Experts models.",
        discussion: """
        moesim sizes MoE models (Kimi K2, DeepSeek-V3, Qwen3, Mixtral, …) from their HuggingFace
        config.json, and measures this CPU with the same kernels its runtime uses.

        Examples:
          moesim calibrate                       measure this CPU (GEMM GFLOP/s, memory GB/s)
          moesim calibrate --json --save host.json
          moesim --help calibrate
        """,
        version: "0.1.0",
        subcommands: [Models.self, Inspect.self, HardwareList.self, PlanCommand.self, EstimateCommand.self,
                      ValidateCommand.self, CompareCommand.self, SweepCommand.self, ReportCommand.self, BenchCommand.self,
                      GenerateCommand.self, Calibrate.self]
    )

    /// Parses, runs, and reports errors as one `error:` line on stderr with a non-zero exit.
    static func main() {
        BLASCore.reexecWithOptimizedKernelsIfNeeded()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            var message = fullMessage(for: error)
            if message.hasPrefix("Error: ") { message = "error: " + message.dropFirst("Error: ".count) }
            if !message.hasPrefix("error:") { message = "error: " + message }
            FileHandle.standardError.write(Data((message + "\n").utf8))
            Foundation.exit(code == .validationFailure ? code.rawValue : 1)
        }
    }
}
