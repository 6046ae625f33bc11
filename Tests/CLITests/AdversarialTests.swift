import Foundation
import Testing

/// Hostile command lines and files, generated from a seed: every one must end in a clear
/// `error:` line or a sane answer — never a crash (a signal, an overflow trap, an abort), never a
/// hang, never an answer holding NaN, inf or a negative rate. `swift test` runs a small set; set
/// MOESIM_ADVERSARIAL_CASES (e.g. 2000, `make adversarial`) for a larger run.
@Suite(.serialized) struct AdversarialTests {
    static let hostileNumbers = ["0", "-1", "1", "2", "9223372036854775807", "-9223372036854775808", "4294967296",
                                 "1000000000000", "1e308", "nan", "inf", "-inf", "0.5", "1.5", "", "abc", "0x10", "1e-300"]

    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
        mutating func chance(_ p: Double) -> Bool { Double(next() % 1000) < p * 1000 }
    }

    static let setKeys = ["num_hidden_layers", "hidden_size", "n_routed_experts", "num_experts_per_tok", "vocab_size",
                          "num_attention_heads", "num_key_value_heads", "kv_lora_rank", "moe_intermediate_size",
                          "intermediate_size", "first_k_dense_replace", "max_position_embeddings", "q_lora_rank",
                          "qk_rope_head_dim", "n_shared_experts", "n_group", "topk_group", "index_topk", "index_n_heads",
                          "head_dim", "hc_mult", "o_groups", "sliding_window", "linear_num_value_heads", "linear_num_key_heads",
                          "linear_conv_kernel_dim", "routed_expert_hidden_size", "swa_num_key_value_heads", "v_head_dim",
                          "attn_res_block_size", "activation_situ_beta", "activation_situ_linear_beta"]
    static let layouts = ["attention=dp,tp=0,ep=8,pp=1", "attention=tp,tp=9223372036854775807,ep=1,pp=1", "ep=-1", "pp=0",
                          ",,,", "attention=xx", "tp=3,ep=5,pp=7", "attention=dp,tp=1,ep=4096,pp=4096", "moe_tp=0",
                          "attention=tp,tp=8,ep=1,pp=1,moe_tp=8", "attention=dp,tp=1,ep=16,pp=1"]
    static let models = ["kimi-k2", "deepseek-v3", "mixtral-8x7b", "llama3.1-70b", "qwen3-30b-a3b", "gpt-oss-20b", "llama4-scout",
                         "deepseek-v3.2", "deepseek-v4-flash", "qwen3.5-122b-a10b", "kimi-k3", "mimo-v2-flash", "minimax-m2.5"]

    /// One hostile command line.
    static func commandLine(_ g: inout Generator, folder: String) -> [String] {
        func n() -> String { g.pick(hostileNumbers) }
        let model = g.pick(models)
        switch g.next() % 10 {
        case 0:
            return ["inspect", model, "--set", "\(g.pick(setKeys))=\(n())", "--json"]
        case 1:
            if g.chance(0.3) {
                return ["report", "--no-cpu", "--model", "mixtral-8x7b", "--json", "--context", n(), "--concurrency", n(),
                        "--gpus", g.pick(["2", n()]), "--users", g.pick(["4", n()])]
            }
            var args = ["plan", "--model", model, "--gpus", n(), "--context", n(), "--concurrency", n()]
            if g.chance(0.3) { args.append("--min-gpus") }
            if g.chance(0.3) { args += ["--layout", g.pick(layouts)] }
            return args
        case 2:
            let flag = g.pick(["--gpus", "--input", "--output", "--batch-per-gpu", "--prefill-tokens", "--prefix-cache-hit-rate",
                               "--expert-skew", "--gpu-hour-price", "--max-ttft", "--max-tpot", "--gpus-per-node", "--pue",
                               "--grid-gco2-per-kwh"])
            var args = ["estimate", "--model", model, flag, n(), "--json"]
            if g.chance(0.4) { args += ["--layout", g.pick(layouts)] }
            if g.chance(0.2) { args += ["--weights", g.pick(["checkpoint", n()])] }
            if g.chance(0.3) { args += ["--set", "\(g.pick(setKeys))=\(n())"] }
            return args
        case 3:
            let flag = g.pick(["--concurrency", "--token-budget", "--mtp", "--input", "--output", "--input-range", "--output-range",
                               "--max-batch-per-gpu", "--continuous-decode-steps", "--scheduler-recv-interval"])
            var args = ["estimate", "--model", g.pick(["mixtral-8x7b", "deepseek-v3", "llama3.1-70b"]), "--concurrency", "8", flag, n(), "--json"]
            if g.chance(0.3) { args += ["--scheduler", "prefill-first"] }
            if g.chance(0.3) { args += ["--prefill-pool", "\(n()),\(n())", "--decode-pool", "8,1"] }
            if g.chance(0.2) { args += ["--pd-router", g.pick(["sglang", "dynamo", n()])] }
            return args
        case 4:
            return ["serve", "--model", "mixtral-8x7b", "--gpus", g.pick(["2", n()]), "--rate", n(), "--requests", g.pick(["50", n()]),
                    "--input", g.pick(["256", n()]), "--output", g.pick(["16", n()]), "--pue", g.pick(["1.2", n()]), "--json"]
        case 5:
            return ["capacity", "--model", g.pick(["mixtral-8x7b", "llama3.1-70b"]), g.pick(["--users", "--rate"]), n(),
                    "--slo-ttft", g.pick(["1", n()]), "--slo-tpot", g.pick(["0.05", n()]), "--max-gpus", g.pick(["32", n()]),
                    "--input", "512", "--output", "64", "--json"]
        case 6:
            return ["compare", "--model", model, "--vary", "\(g.pick(setKeys))=\(n()),\(n())", "--gpus", g.pick(["8", n()]), "--json"]
        case 7:
            return ["sweep", "--model", "mixtral-8x7b", "--gpus", g.pick(["2", n()]), "--concurrency", "\(n()),\(n())",
                    "--csv", folder + "/s.csv", "--svg", folder + "/s.svg", "--json"]
        case 8:
            // Small runs (a debug build is slow), one flag hostile.
            var args = ["bench", g.pick(["mixtral-8x7b", "kimi-k2", "qwen3-30b-a3b"]), "--scale", "16", "--layers", "2", "--batch", "1",
                        "--prompt", "8", "--generate", "2", "--host", folder + "/host.json", "--json"]
            let flag = g.pick(["--scale", "--layers", "--batch", "--prompt", "--generate"])
            // Valid small scales build models of billions of weights: seconds in release, minutes
            // in the debug build the tests run; `--scale 1` of a large model is refused by the
            // memory check (covered by the others' huge values).
            let value = flag == "--scale" ? g.pick(["0", "-1", "9223372036854775807", "1e308", "nan", "", "abc", "4294967296", "3"]) : n()
            if let i = args.firstIndex(of: flag) { args[i + 1] = value }
            return args
        default:
            if g.chance(0.5) {
                return [g.pick(["estimate", "plan"]), "--model", "mixtral-8x7b", "--gpus", "8", "--gpu",
                        folder + "/hardware-\(g.next() % 4).json", "--json"]
            }
            return ["validate", folder + "/measurements-\(g.next() % 4).json", "--json"]
        }
    }

    /// Hardware files with one field broken, a host spec for bench, measurement files with one
    /// entry broken.
    static func writeFiles(_ folder: String, _ g: inout Generator) throws {
        let host = #"{"schema": "moesim-hardware/1", "id": "host", "kind": "cpu", "memory_bytes": 25000000000, "memory_bandwidth": 3e10, "peak_flops": {"fp32": 3e11}, "scale_up_domain": 1, "efficiency": {"matmul": 1, "memory": 1, "scale_up": 1, "scale_out": 1}, "threads": 2}"#
        try host.write(toFile: folder + "/host.json", atomically: true, encoding: .utf8)
        let fields = ["memory_bytes", "memory_bandwidth", "scale_up_domain", "scale_up_bandwidth", "scale_out_bandwidth",
                      "scale_up_latency", "gpu_hour_price"]
        for i in 0..<4 {
            let field = g.pick(fields)
            let value = g.pick(["0", "-1", "1e308", "9223372036854775807", "1e-300", "\"x\"", "null", "100000000"])
            let text = #"{"schema": "moesim-hardware/1", "id": "bad\#(i)", "kind": "gpu", "memory_bytes": 151397597184, "memory_bandwidth": 4.8e12, "peak_flops": {"bf16": 9.89e14, "fp8": 1.978e15}, "scale_up_bandwidth": 4.5e11, "scale_up_domain": 8, "scale_out_bandwidth": 5e10, "efficiency": {"matmul": 0.75, "memory": 0.85, "scale_up": 0.8, "scale_out": 0.8}, "gpu_hour_price": 3.5, "\#(field)": \#(value)}"#
            try text.write(toFile: folder + "/hardware-\(i).json", atomically: true, encoding: .utf8)
        }
        let entryFields = ["gpus", "input_tokens", "output_tokens", "batch_per_gpu", "concurrency", "value", "pd_router"]
        for i in 0..<4 {
            let field = g.pick(entryFields)
            let value = g.pick(["0", "-1", "1e308", "9223372036854775807", "1e-300", "\"x\"", "null", "1000000000"])
            let layout = g.pick([#"{"attention": "dp", "tp": 0, "ep": 8, "pp": 1}"#, #"{"attention": "tp", "tp": 8, "ep": 1, "pp": 1, "moe_tp": 8}"#,
                                 #"{"tp": 9223372036854775807}"#, #"{"pp": 0}"#])
            let text = #"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "model": "mixtral-8x7b", "gpu": "h200-sxm", "gpus": 8, "weights": "fp8", "layout": \#(layout), "phase": "\#(g.pick(["decode", "prefill", "offline", "serving"]))", "input_tokens": 1024, "output_tokens": 128, "concurrency": 16, "metric": "output_tokens_per_s_per_gpu", "value": 100, "\#(field)": \#(value)}]}"#
            try text.write(toFile: folder + "/measurements-\(i).json", atomically: true, encoding: .utf8)
        }
    }

    static func caseCount() -> Int {
        Int(ProcessInfo.processInfo.environment["MOESIM_ADVERSARIAL_CASES"] ?? "") ?? 60
    }

    @Test func hostileInputsNeverCrashHangOrPrintNonsense() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("moesim-adversarial-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var g = Generator(state: UInt64(ProcessInfo.processInfo.environment["MOESIM_ADVERSARIAL_SEED"] ?? "") ?? 20_261_201)
        try Self.writeFiles(folder, &g)
        var failures: [String] = []
        for _ in 0..<Self.caseCount() {
            let args = Self.commandLine(&g, folder: folder)
            let run = try moesim(arguments: args, timeout: 60)
            let line = "moesim " + args.joined(separator: " ")
            if run.timedOut { failures.append("hang: \(line)"); continue }
            if run.crashed { failures.append("crash (\(run.status)): \(line)\n\(run.stderr.suffix(300))"); continue }
            if run.status != 0 {
                let lines = run.stderr.split(separator: "\n")
                if !(lines.first?.hasPrefix("error:") ?? false) || lines.count > 2 {
                    failures.append("error not one line: \(line)\n\(run.stderr.prefix(300))")
                }
                continue
            }
            let out = run.stdout.lowercased()
            for word in ["nan", "inf,", ": inf", "-inf", "$nan", "$inf"] where out.contains(word) {
                failures.append("'\(word)' in the answer: \(line)")
            }
        }
        let report = failures.prefix(25).joined(separator: "\n")
        #expect(failures.isEmpty, "\(failures.count) failures:\n\(report)")
    }
}
