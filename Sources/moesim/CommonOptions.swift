import ArgumentParser
import TensorCore

/// Options every command that computes on the CPU takes.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for TensorCore and OpenBLAS (default: MOESIM_THREADS, else every core).")
    var threads: Int?

    /// Applies the thread count; a bad value in the flag or in MOESIM_THREADS is an error.
    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func apply() throws {
        if let threads {
            try Threading.set(threads)
        } else if let text = Threading.environmentThreads() {
            guard let value = Int(text), value >= 1 else {
                throw ValidationError("MOESIM_THREADS must be a positive integer, got '\(text)'")
            }
            try Threading.set(value)
        }
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object instead of a table.")
    var json = false
}
