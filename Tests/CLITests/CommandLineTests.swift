import Foundation
import Testing
import TestSupport

/// The command-line contract of docs/design.md, checked on the built `moesim` binary: the JSON keys
/// each command promises, and bad input answered by one `error:` line and a non-zero exit.
struct MoesimRun {
    let status: Int32
    let stdout: String
    let stderr: String
    var crashed = false
    var timedOut = false

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] ?? [:]
    }
}

let repository = root

func moesim(_ arguments: String...) throws -> MoesimRun { try moesim(arguments: arguments) }

func moesim(arguments: [String]) throws -> MoesimRun { try moesim(arguments: arguments, timeout: nil) }

/// Runs the built binary; past `timeout` seconds coreutils' `timeout` kills it (SIGTERM, then
/// SIGKILL) and the run is marked as timed out.
func moesim(arguments: [String], timeout: Double?, environment extra: [String: String] = [:]) throws -> MoesimRun {
    // The binary sits beside the test bundle in the build folder.
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("moesim").path), folder.path != "/" {
        folder = folder.deletingLastPathComponent()
    }
    let binary = folder.appendingPathComponent("moesim").path
    let process = Process()
    if let timeout {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["--kill-after=5", String(Int(timeout)), binary] + arguments
    } else {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
    }
    process.currentDirectoryURL = repository
    var environment = ProcessInfo.processInfo.environment
    environment["MOESIM_CONFIGS"] = repository.appendingPathComponent("configs").path
    environment.merge(extra) { $1 }
    process.environment = environment
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let status = process.terminationStatus
    // timeout exits 124 after SIGTERM, 137 after SIGKILL; a signal that killed moesim itself
    // shows as 128 + signal through timeout, or as an uncaught signal without it.
    // (coreutils' timeout kills itself with the child's KILL when it had to send one).
    let timedOut = timeout != nil && ((process.terminationReason == .exit && (status == 124 || status == 137))
        || (process.terminationReason == .uncaughtSignal && status == SIGKILL))
    let crashed = process.terminationReason == .uncaughtSignal || (timeout != nil && !timedOut && status > 128)
    return MoesimRun(status: status, stdout: String(decoding: stdout, as: UTF8.self),
                     stderr: String(decoding: stderr, as: UTF8.self), crashed: crashed, timedOut: timedOut)
}

@Suite(.serialized) struct CommandLineTests {
    /// MOESIM_KERNELS picks the runtime's kernels (calibrate names them); a value that names none,
    /// or kernels this CPU cannot run, is an error before any command runs.
    @Test func kernelsFromTheEnvironment() throws {
        let bogus = try moesim(arguments: ["models"], timeout: nil, environment: ["MOESIM_KERNELS": "avx3"])
        #expect(bogus.status != 0 && bogus.stderr.contains("MOESIM_KERNELS"), "\(bogus.stderr)")
        let small = ["calibrate", "--size", "128", "--memory-mib", "16", "--json"]
        let rowMajor = try moesim(arguments: small, timeout: nil, environment: ["MOESIM_KERNELS": "none"])
        #expect(rowMajor.status == 0 && rowMajor.json["panel_kernels"] as? String == "none", "\(rowMajor.stderr)")
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("flags") }.map { Set($0.split(separator: " ")) } ?? []
        if flags.contains("avx2") && flags.contains("fma") {
            let avx2 = try moesim(arguments: small, timeout: nil, environment: ["MOESIM_KERNELS": "avx2"])
            #expect(avx2.status == 0 && avx2.json["panel_kernels"] as? String == "avx2", "\(avx2.stderr)")
        }
    }

    @Test func reportJSON() throws {
        let report = try moesim("report", "--no-cpu", "--model", "mixtral-8x7b", "--context", "8192", "--users", "16", "--json")
        #expect(report.status == 0, "\(report.stderr)")
        for key in ["model", "total_params", "min_gpus", "gpus", "plan", "estimate", "serving", "capacity"] {
            #expect(report.json[key] != nil, "report --json lacks \(key)")
        }
        #expect((report.json["serving"] as? [Any])?.count == 4)
        let estimate = report.json["estimate"] as? [String: Any] ?? [:]
        for key in ["power_w_per_gpu", "energy_j_per_output_token", "energy_j_per_input_token", "kwh_per_million_output_tokens",
                    "co2e_g_per_million_output_tokens", "kwh_per_million_input_tokens", "co2e_g_per_million_input_tokens"] {
            #expect(estimate[key] is NSNumber, "report's estimate lacks \(key)")
        }
        let hosted = report.json["hosted_price"] as? [String: Any] ?? [:]
        #expect(hosted["provider"] is String && hosted["break_even_utilization"] is NSNumber)
    }

    /// The grid changes the carbon and nothing else; PUE and grids out of range are refused.
    @Test func energyOptions() throws {
        let args = ["estimate", "--model", "mixtral-8x7b", "--gpus", "2", "--input", "1024", "--output", "256", "--batch-per-gpu", "8",
                    "--layout", "attention=tp,tp=2,ep=1,pp=1,moe_tp=2", "--json"]
        let world = try moesim(arguments: args)
        let france = try moesim(arguments: args + ["--grid", "france"])
        #expect(world.status == 0 && france.status == 0, "\(world.stderr) \(france.stderr)")
        let w = world.json, f = france.json
        let ratio = (f["co2e_g_per_million_output_tokens"] as? Double ?? 0) / (w["co2e_g_per_million_output_tokens"] as? Double ?? 1)
        let grids = (f["grid_gco2_per_kwh"] as? Double ?? 0) / (w["grid_gco2_per_kwh"] as? Double ?? 1)
        #expect(abs(ratio / grids - 1) < 1e-9 && grids < 0.2)
        #expect(f["energy_j_per_output_token"] as? Double == w["energy_j_per_output_token"] as? Double)
        let doubled = try moesim(arguments: args + ["--pue", "2.6"])
        #expect(abs((doubled.json["energy_j_per_output_token"] as? Double ?? 0) / (w["energy_j_per_output_token"] as? Double ?? 1) - 2) < 1e-9)
        for bad in [["--pue", "0.5"], ["--grid", "mars"], ["--grid-gco2-per-kwh", "3000"], ["--grid", "eu", "--grid-gco2-per-kwh", "100"]] {
            let run = try moesim(arguments: args + bad)
            #expect(run.status != 0 && !run.crashed && run.stderr.contains(bad[0]), "\(bad): \(run.stderr)")
        }
    }

    /// serve, capacity and sweep --concurrency: their JSON contracts and files.
    @Test func serveCapacityAndSweepKeys() throws {
        let serve = try moesim("serve", "--model", "mixtral-8x7b", "--gpus", "2", "--layout", "attention=tp,tp=2,ep=1,pp=1,moe_tp=2",
                               "--input", "512", "--output", "32", "--rate", "4", "--requests", "200", "--slo-ttft", "1", "--slo-tpot", "0.1",
                               "--json")
        #expect(serve.status == 0, "\(serve.stderr)")
        for key in ["output_tokens_per_s_per_gpu", "input_tokens_per_s_per_gpu", "total_tokens_per_s_per_gpu",
                    "output_tokens_per_s_per_user", "ttft_s", "tpot_s", "e2e_s", "ttft_p90_s", "ttft_p99_s", "tpot_p90_s",
                    "tpot_p99_s", "e2e_p90_s", "e2e_p99_s", "requests", "gpus", "goodput_requests_per_s", "prefix_cache_hit_rate"] {
            #expect(serve.json[key] is NSNumber, "serve lacks \(key)")
        }
        #expect(serve.json["requests"] as? Int == 200)
        let kv = serve.json["kv_utilization"] as? [String: Any] ?? [:]
        #expect(kv["mean"] is NSNumber && kv["max"] is NSNumber)

        let capacity = try moesim("capacity", "--model", "llama3.1-70b", "--users", "256", "--input", "1024", "--output", "256",
                                  "--slo-ttft", "1", "--slo-tpot", "0.03", "--max-gpus", "32", "--json")
        #expect(capacity.status == 0, "\(capacity.stderr)")
        for key in ["gpus", "meets_slo", "ttft_s", "tpot_s", "cost_per_million_output_tokens"] {
            #expect(capacity.json[key] != nil, "capacity lacks \(key)")
        }
        // What ran: the default engine (mixed scheduler, graphed prompt steps) and one weight format.
        #expect(capacity.json["scheduler"] as? String == "mixed" && capacity.json["eager_prefill"] as? Bool == false)
        #expect(capacity.json["attention_weights"] as? String == "fp8")
        if let split = capacity.json["disaggregated"] as? [String: Any] {
            for pool in ["prefill", "decode"] {
                let object = split[pool] as? [String: Any] ?? [:]
                #expect(object["gpus"] is Int && object["workers"] is Int && object["layout"] is String)
            }
        } else {
            #expect(capacity.json["layout"] is String)
        }

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("moesim-sweep-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let csv = folder.appendingPathComponent("s.csv").path, svg = folder.appendingPathComponent("s.svg").path
        let sweep = try moesim("sweep", "--model", "mixtral-8x7b", "--gpus", "2", "--gpu", "h200-sxm,b200", "--concurrency", "1,8,32",
                               "--input", "512", "--output", "64", "--csv", csv, "--svg", svg)
        #expect(sweep.status == 0, "\(sweep.stderr)")
        let rows = (try? String(contentsOfFile: csv, encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(rows.count == 7)
        let chart = (try? String(contentsOfFile: svg, encoding: .utf8)) ?? ""
        #expect(chart.contains("h200-sxm fp8 (Pareto front)") && chart.contains("b200 fp8 (Pareto front)"))
        let device = try moesim("sweep", "--model", "mixtral-8x7b", "--gpus", "2", "--concurrency", "1", "--csv", "/dev/null", "--svg", svg)
        #expect(device.status != 0 && device.stderr.contains("not a regular file"), "\(device.stderr)")
    }

    /// `--weights checkpoint` plans the model as its config ships it: DeepSeek-V4-Pro's FP4
    /// experts make its weights fit on fewer GPUs than all-FP8; a scheme moesim cannot price is
    /// one error line.
    @Test func weightsAsShipped() throws {
        let shipped = try moesim("plan", "--model", "deepseek-v4-pro", "--weights", "checkpoint", "--min-gpus", "--json")
        let fp8 = try moesim("plan", "--model", "deepseek-v4-pro", "--weights", "fp8", "--min-gpus", "--json")
        #expect(shipped.status == 0 && fp8.status == 0, "\(shipped.stderr) \(fp8.stderr)")
        #expect(shipped.json["expert_weights"] as? String == "mxfp4" && fp8.json["expert_weights"] as? String == "fp8")
        let fewer = shipped.json["min_gpus"] as? Int ?? 0, more = fp8.json["min_gpus"] as? Int ?? 0
        #expect(fewer > 0 && fewer < more, "as shipped \(fewer) GPUs, all fp8 \(more)")
        // The estimate prices the same checkpoint: its FP4 experts stream half
        // the bytes of FP8 ones, so a decode-bound step is faster.
        let asShipped = try moesim("estimate", "--model", "deepseek-v4-flash", "--gpu", "b200", "--gpus", "8", "--weights", "checkpoint",
                                   "--batch-per-gpu", "8", "--json")
        let allFP8 = try moesim("estimate", "--model", "deepseek-v4-flash", "--gpu", "b200", "--gpus", "8", "--weights", "fp8",
                                "--batch-per-gpu", "8", "--json")
        #expect(asShipped.json["expert_weights"] as? String == "mxfp4" && asShipped.json["weights"] as? String == "fp8", "\(asShipped.stderr)")
        #expect((asShipped.json["tpot_s"] as? Double ?? 1) < (allFP8.json["tpot_s"] as? Double ?? 0))
        let k25 = try moesim("plan", "--model", "kimi-k2.5", "--weights", "checkpoint", "--json")
        #expect(k25.json["expert_weights"] as? String == "int4-g32" && k25.json["weights"] as? String == "bf16", "\(k25.stderr)")
    }

    /// `estimate --concurrency N --json`: the serving contract's keys; with pools, `prefill` and
    /// `decode` objects; a batch past the fit is one error line naming the largest.
    @Test func servingEstimateKeys() throws {
        let aggregated = try moesim("estimate", "--model", "mixtral-8x7b", "--gpus", "2", "--layout", "attention=tp,tp=2,ep=1,pp=1,moe_tp=2",
                                    "--input", "512", "--output", "64", "--input-range", "0.8,1.0", "--output-range", "0.75,1.0",
                                    "--max-batch-per-gpu", "2", "--concurrency", "8", "--num-prompts", "80", "--json")
        #expect(aggregated.status == 0, "\(aggregated.stderr)")
        // Prompts of 410…512 tokens (mean 461) and answers of 48…64 (mean 56), every one of the 80
        // counted: the token rates keep the ratio of the mean lengths (80 draws: within ~1%).
        let ratio = (aggregated.json["input_tokens_per_s_per_gpu"] as? Double ?? 0) / (aggregated.json["output_tokens_per_s_per_gpu"] as? Double ?? 1)
        #expect(abs(ratio / (461.0 / 56) - 1) < 0.03, "input/output \(ratio)")
        // Two running per GPU on two GPUs: four of the eight at a time.
        #expect((aggregated.json["mean_decode_batch_per_decode_gpu"] as? Double ?? 99) <= 2 + 1e-9)
        #expect(aggregated.json["max_batch_per_gpu"] as? Int == 2)
        #expect(aggregated.json["weights"] as? String == "fp8" && aggregated.json["expert_weights"] as? String == "fp8")
        let badRange = try moesim("estimate", "--concurrency", "8", "--output-range", "0.5")
        #expect(badRange.status != 0 && badRange.stderr.contains("--output-range"), "\(badRange.stderr)")
        let keys = ["output_tokens_per_s_per_gpu", "input_tokens_per_s_per_gpu", "total_tokens_per_s_per_gpu",
                    "output_tokens_per_s_per_user", "ttft_s", "tpot_s", "e2e_s", "ttft_p90_s", "ttft_p99_s", "tpot_p90_s",
                    "tpot_p99_s", "e2e_p90_s", "e2e_p99_s", "gpus"]
        for key in keys { #expect(aggregated.json[key] is NSNumber, "estimate --concurrency lacks \(key)") }
        let p90 = aggregated.json["ttft_p90_s"] as? Double ?? 0, median = aggregated.json["ttft_s"] as? Double ?? 1
        #expect(p90 >= median)
        let split = try moesim("estimate", "--model", "deepseek-v3", "--input", "1024", "--output", "128", "--concurrency", "64",
                               "--prefill-pool", "8,1,attention=dp,tp=1,ep=8,pp=1", "--decode-pool", "8,1,attention=dp,tp=1,ep=8,pp=1",
                               "--json")
        #expect(split.status == 0, "\(split.stderr)")
        #expect(split.json["gpus"] as? Int == 16)
        for pool in ["prefill", "decode"] {
            let object = split.json[pool] as? [String: Any] ?? [:]
            #expect(object["gpus"] as? Int == 8 && object["workers"] as? Int == 1 && object["layout"] is String, "\(pool)")
        }
        #expect(split.json["pd_router"] == nil && aggregated.json["pd_router"] == nil)
        let routed = try moesim("estimate", "--model", "deepseek-v3", "--input", "1024", "--output", "128", "--concurrency", "64",
                                "--prefill-pool", "8,1,attention=dp,tp=1,ep=8,pp=1", "--decode-pool", "8,1,attention=dp,tp=1,ep=8,pp=1",
                                "--framework", "sglang", "--json")
        #expect(routed.json["pd_router"] as? String == "sglang", "\(routed.stderr)")
        let told = try moesim("estimate", "--model", "deepseek-v3", "--input", "1024", "--output", "128", "--concurrency", "64",
                              "--prefill-pool", "8,1,attention=dp,tp=1,ep=8,pp=1", "--decode-pool", "8,1,attention=dp,tp=1,ep=8,pp=1",
                              "--framework", "sglang", "--pd-router", "dynamo", "--json")
        #expect(told.json["pd_router"] as? String == "dynamo", "\(told.stderr)")
        let tooBig = try moesim("estimate", "--model", "deepseek-v3", "--gpus", "8", "--batch-per-gpu", "1000", "--input", "32768")
        #expect(tooBig.status != 0 && tooBig.stdout.isEmpty)
        #expect(tooBig.stderr.contains("largest that fits is"), "\(tooBig.stderr)")
        let mixed = try moesim("estimate", "--concurrency", "8", "--batch-per-gpu", "4")
        #expect(mixed.status != 0 && mixed.stderr.hasPrefix("error:"))
    }

    @Test func modelsAndInspectKeys() throws {
        let models = try moesim("models", "--json").json["models"] as? [[String: Any]] ?? []
        #expect(models.count >= 16)
        #expect(models.allSatisfy { $0["id"] != nil && $0["total_params"] != nil && $0["active_params"] != nil })
        let inspect = try moesim("inspect", "kimi-k2", "--json").json
        for key in ["total_params", "active_params", "layers", "experts", "experts_per_token", "kv_cache_bytes_per_token", "weight_bytes"] {
            #expect(inspect[key] != nil, "inspect lacks \(key)")
        }
        #expect(inspect["total_params"] as? Int == 1_026_408_232_448)
        #expect(inspect["activation"] as? String == "silu" && inspect["attention_residual_block"] is NSNull)
        // Kimi K3's and DeepSeek-V4's residual schemes and K3's activation, as their configs say.
        let k3 = try moesim("inspect", "kimi-k3", "--json").json, v4 = try moesim("inspect", "deepseek-v4-pro", "--json").json
        #expect(k3["activation"] as? String == "situ" && k3["attention_residual_block"] as? Int == 12)
        #expect(v4["hyper_connection_streams"] as? Int == 4 && v4["attention_residual_block"] is NSNull)
    }

    @Test func hardwareAndPlanKeys() throws {
        let hardware = try moesim("hardware", "--json").json["hardware"] as? [[String: Any]] ?? []
        #expect(hardware.count == 12)
        #expect(hardware.allSatisfy { $0["memory_bytes"] != nil && $0["memory_bandwidth"] != nil && $0["peak_flops"] is [String: Any] })
        let plan = try moesim("plan", "--model", "deepseek-v3", "--gpu", "h200-sxm", "--gpus", "8", "--json").json
        for key in ["feasible", "best", "memory_per_gpu", "max_concurrent_sequences", "layouts"] {
            #expect(plan[key] != nil, "plan lacks \(key)")
        }
        let memory = plan["memory_per_gpu"] as? [String: Any] ?? [:]
        #expect(["weights", "kv_cache", "activations", "reserved", "free"].allSatisfy { memory[$0] != nil })
        let infeasible = try moesim("plan", "--model", "deepseek-v3", "--gpu", "h100-sxm", "--gpus", "8", "--json").json
        #expect(infeasible["feasible"] as? Bool == false && (infeasible["reason"] as? String)?.isEmpty == false)
    }

    @Test func estimateValidateAndCompareKeys() throws {
        let estimate = try moesim("estimate", "--gpus", "16", "--layout", "attention=dp,tp=1,ep=16,pp=1", "--json").json
        for key in ["input_tokens_per_s_per_gpu", "output_tokens_per_s_per_gpu", "output_tokens_per_s_per_user", "ttft_s",
                    "tpot_s", "bottleneck", "cost_per_million_output_tokens"] {
            #expect(estimate[key] != nil, "estimate lacks \(key)")
        }
        let validate = try moesim("validate", "--json").json
        #expect((validate["entries"] as? [[String: Any]])?.count == 8 && validate["median_abs_error"] != nil)
        let within = (validate["within_1_5x"] as? Int ?? -1, validate["within_2x"] as? Int ?? -1, validate["priced"] as? Int ?? -1)
        #expect(within.0 >= 0 && within.0 <= within.1 && within.1 <= within.2 && within.2 == 8, "\(within)")
        let compare = try moesim("compare", "--model", "mixtral-8x7b", "--gpu", "h100-sxm,h200-sxm", "--json").json
        let variants = compare["variants"] as? [[String: Any]] ?? []
        #expect(variants.count == 2)
        for key in ["label", "total_params", "active_params", "min_gpus", "output_tokens_per_s_per_gpu", "cost_per_million_output_tokens"] {
            #expect(variants.allSatisfy { $0[key] != nil }, "compare lacks \(key)")
        }
    }

    /// --features eager-prefill prices the prompt at the host's launch floor; an unknown feature
    /// is refused with the list of the known ones.
    @Test func eagerPrefillFeature() throws {
        func ttft(_ extra: String...) throws -> Double {
            try moesim(arguments: ["estimate", "--model", "deepseek-v3", "--gpu", "h200-sxm", "--gpus", "8", "--input", "16",
                                   "--output", "16", "--batch-per-gpu", "1", "--json"] + extra).json["ttft_s"] as? Double ?? -1
        }
        let graphed = try ttft(), eager = try ttft("--features", "eager-prefill")
        #expect(graphed > 0 && eager > 2 * graphed, "\(eager) against \(graphed)")
        let bad = try moesim("estimate", "--features", "graphs")
        #expect(bad.status != 0 && bad.stderr.contains("eager-prefill"), "\(bad.stderr)")
    }

    /// --framework sets the engine's defaults (SGLang: prefill-first, eager prefill; TensorRT-LLM:
    /// mixed, eager context steps), which the JSON reports and explicit flags override; SGLang's
    /// settings are accepted under it.
    @Test func frameworkDefaults() throws {
        func serve(_ extra: String...) throws -> [String: Any] {
            try moesim(arguments: ["estimate", "--model", "mixtral-8x7b", "--gpu", "h200-sxm", "--gpus", "2", "--input", "256",
                                   "--output", "32", "--concurrency", "4", "--json"] + extra).json
        }
        let sglang = try serve("--framework", "sglang")
        #expect(sglang["scheduler"] as? String == "prefill-first" && sglang["eager_prefill"] as? Bool == true, "\(sglang)")
        let vllm = try serve("--framework", "vllm")
        #expect(vllm["scheduler"] as? String == "mixed" && vllm["eager_prefill"] as? Bool == false, "\(vllm)")
        let overridden = try serve("--framework", "sglang", "--scheduler", "mixed")
        #expect(overridden["scheduler"] as? String == "mixed" && overridden["eager_prefill"] as? Bool == true)
        #expect(try serve("--framework", "sglang", "--continuous-decode-steps", "4")["scheduler"] as? String == "prefill-first")
        #expect(try serve("--framework", "sglang", "--no-eager-prefill")["eager_prefill"] as? Bool == false)
        let trt = try serve("--framework", "tensorrt-llm")
        #expect(trt["scheduler"] as? String == "mixed" && trt["eager_prefill"] as? Bool == true, "\(trt)")
        #expect(try serve("--framework", "tensorrt-llm", "--no-eager-prefill")["eager_prefill"] as? Bool == false)
    }

    /// --attention-weights bf16 keeps an FP4 checkpoint's attention in bf16: the plan says so and
    /// holds more weight bytes per GPU.
    @Test func attentionWeightsOption() throws {
        func plan(_ extra: String...) throws -> MoesimRun {
            try moesim(arguments: ["plan", "--model", "deepseek-r1", "--gpu", "b200", "--gpus", "8", "--weights", "fp4",
                                   "--layout", "attention=tp,tp=8,ep=8,pp=1"] + extra)
        }
        let text = try plan("--attention-weights", "bf16")
        #expect(text.status == 0 && text.stdout.contains("fp4 weights with bf16 attention"), "\(text.stdout)\(text.stderr)")
        func weights(_ run: MoesimRun) -> Double {
            (((run.json["best"] as? [String: Any])?["memory_per_gpu"] as? [String: Any])?["weights"] as? Double) ?? -1
        }
        let all = try weights(plan("--json")), split = try weights(plan("--json", "--attention-weights", "bf16"))
        #expect(all > 0 && split > all, "\(split) against \(all)")
        #expect(try plan("--json", "--attention-weights", "bf16").json["attention_weights"] as? String == "bf16")
        // NVIDIA's v2 split keeps the output projections in FP4: between the two.
        let qkv = try plan("--json", "--attention-weights", "bf16-qkv")
        #expect(qkv.json["attention_weights"] as? String == "bf16-qkv")
        #expect(weights(qkv) > all && weights(qkv) < split, "\(weights(qkv)) between \(all) and \(split)")
    }

    /// validate's "furthest" line states the ratio its JSON's numbers give: two decimals from a
    /// tenth up, "1/N of" below (N = measured / predicted, rounded), and past a million a bound
    /// rather than a 300-digit N.
    @Test(arguments: [10.0, 3_000.0, 1e12])
    func furthestRowStatesItsRatio(measured: Double) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("moesim-furthest-\(UUID()).json")
        try #"""
        {"schema": "moesim-measurements/1", "entries": [{"id": "a", "model": "llama3.1-70b", "gpu": "h200-sxm", "gpus": 1,
         "weights": "fp8", "kv_cache": "bf16", "phase": "decode", "input_tokens": 1000, "batch_per_gpu": 1,
         "metric": "output_tokens_per_s_per_gpu", "value": \#(measured)}]}
        """#.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let entry = try #require((try moesim("validate", file.path, "--json").json["entries"] as? [[String: Any]])?.first)
        let ratio = try #require(entry["predicted"] as? Double) / measured
        let expected = ratio >= 0.1 ? String(format: "%.2f×", ratio)
            : ratio >= 1e-6 ? "1/\(String(format: "%.0f", 1 / ratio)) of" : "under 1/1,000,000 of"
        let text = try moesim("validate", file.path).stdout
        #expect(text.contains("furthest: a, predicted \(expected) the measurement"), "\(text)")
    }

    /// generate reproduces transformers' greedy continuation of the Mixtral fixture.
    @Test func generateMatchesTheFixture() throws {
        let folder = repository.appendingPathComponent("Tests/CPURuntimeTests/Fixtures/mixtral").path
        let run = try moesim("generate", folder, "--tokens", "3,17,42,5,99,64,7,23,11,80", "--max-new", "8", "--json")
        #expect(run.json["tokens"] as? [Int] == [112, 98, 124, 112, 98, 97, 79, 5])
        #expect(run.json["prefill_tokens_per_s"] != nil && run.json["decode_tokens_per_s"] != nil)
    }

    /// calibrate's keys (the issue's four), and the runtime kernels it reports against the CPU's
    /// own flags in /proc/cpuinfo (or MOESIM_KERNELS where the run sets it): AVX-512 or AVX2
    /// panels with their 22-row curve, else OpenBLAS with 44.
    @Test func calibrateKeys() throws {
        let json = try moesim("calibrate", "--size", "64", "--memory-mib", "16", "--json").json
        for key in ["gemm_gflops", "blas_gemm_gflops", "memory_gb_per_s", "threads"] {
            #expect(json[key] != nil, "calibrate lacks \(key)")
        }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ") ?? [])
        let native = flags.contains("avx512f") ? "avx512" : flags.contains("avx2") && flags.contains("fma") ? "avx2" : "none"
        let requested = ProcessInfo.processInfo.environment["MOESIM_KERNELS"] ?? ""
        let expected = requested.isEmpty ? native : requested
        #expect(json["panel_kernels"] as? String == expected)
        #expect(json["half_efficiency_rows"] as? Double == (expected == "none" ? 44 : 22))
    }

    /// bench on the Mixtral fixture's real weights, priced on a small hand-written host spec: the
    /// JSON keys, the prefill split by part, and the prediction present.
    @Test func benchKeys() throws {
        let host = FileManager.default.temporaryDirectory.appendingPathComponent("moesim-test-host.json")
        try #"""
        {"schema": "moesim-hardware/1", "id": "host-cpu", "name": "test CPU", "kind": "cpu", "memory_bytes": 17179869184,
         "memory_bandwidth": 2e10, "peak_flops": {"fp32": 1e11, "bf16": 1e11}, "scale_up_domain": 1,
         "efficiency": {"matmul": 1, "memory": 1, "scale_up": 1, "scale_out": 1, "half_efficiency_rows": 22}}
        """#.write(to: host, atomically: true, encoding: .utf8)
        let folder = repository.appendingPathComponent("Tests/CPURuntimeTests/Fixtures/mixtral").path
        let run = try moesim("bench", folder, "--batch", "2", "--prompt", "6", "--generate", "3", "--host", host.path, "--json")
        for key in ["prefill_tokens_per_s", "decode_tokens_per_s", "prefill_gflops", "memory_gb_per_s", "expert_load",
                    "predicted_prefill_tokens_per_s", "predicted_decode_tokens_per_s", "weight_bytes", "kv_cache_bytes"] {
            #expect(run.json[key] != nil, "bench lacks \(key)")
        }
        let parts = run.json["prefill_seconds_by_part"] as? [String: [String: Double]] ?? [:]
        #expect(Set(parts.keys) == ["embedding", "norm", "attention", "mlp", "moe", "head"])
        #expect((parts["moe"]?["measured"] ?? 0) > 0 && (parts["moe"]?["predicted"] ?? 0) > 0)
        // Conservation: every token of the timed run (2 × 6 prompt + 2 × 3 generated) goes to k
        // experts in each MoE layer, counted once per expert.
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/config.json"))) as? [String: Any] ?? [:]
        let experts = config["num_local_experts"] as? Int ?? -1, k = config["num_experts_per_tok"] as? Int ?? -1
        let layers = config["num_hidden_layers"] as? Int ?? -1
        let load = run.json["expert_load"] as? [Int] ?? []
        #expect(load.count == experts)
        #expect(load.reduce(0, +) == (2 * 6 + 2 * 3) * k * layers)
    }

    @Test(arguments: [
        ["inspect", "no-such-model"], ["plan", "--gpus", "0"], ["plan", "--gpus", "12"], ["plan", "--layout", "tp=3"],
        ["estimate", "--weights", "fp5"], ["inspect", "kimi-k2", "--set", "n_routed_experts"], ["calibrate", "--bogus"],
        ["generate", "/no/such/folder", "--tokens", "1"], ["validate", "/no/such/file.json"], ["plan", "--gpu", "tpu-v9"],
        ["estimate", "--model", "mixtral-8x7b", "--concurrency", "8", "--scheduler-recv-interval", "10"],
        ["estimate", "--model", "mixtral-8x7b", "--scheduler", "prefill-first", "--scheduler-recv-interval", "10"],
        ["estimate", "--model", "mixtral-8x7b", "--memory-reserve", "0.95"], ["plan", "--memory-reserve", "-0.1"],
        ["plan", "--weights", "fp4", "--attention-weights", "fp8"],
        ["plan", "--weights", "bf16", "--attention-weights", "bf16-qkv"],
        ["estimate", "--model", "mixtral-8x7b", "--concurrency", "8", "--framework", "tgi"],
        ["estimate", "--model", "mixtral-8x7b", "--concurrency", "8", "--framework", "vllm", "--continuous-decode-steps", "4"],
        ["estimate", "--model", "mixtral-8x7b", "--framework", "sglang"],
        ["estimate", "--model", "mixtral-8x7b", "--concurrency", "8", "--framework", "tgi", "--scheduler", "mixed"],
        ["estimate", "--model", "mixtral-8x7b", "--concurrency", "8", "--features", "eager-prefill", "--no-eager-prefill"],
        ["estimate", "--model", "mixtral-8x7b", "--concurrency", "8", "--framework", "vllm", "--no-eager-prefill"],
        ["estimate", "--model", "mixtral-8x7b", "--concurrency", "8", "--pd-router", "sglang"],
        ["estimate", "--model", "mixtral-8x7b", "--pd-router", "dynamo"],
        ["estimate", "--model", "mixtral-8x7b", "--concurrency", "8", "--pd-router", "nginx"],
        ["capacity", "--model", "mixtral-8x7b", "--users", "8", "--pd-router", "sglang", "--no-disaggregation"],
    ])
    func badInputIsOneErrorLine(arguments: [String]) throws {
        let run = try moesim(arguments: arguments)
        #expect(run.status != 0, "\(arguments) exited 0")
        #expect(run.stderr.hasPrefix("error:"), "\(arguments): \(run.stderr)")
        #expect(!run.stderr.contains("Fatal error"))
        #expect(run.stderr.split(separator: "\n").first?.contains("--json") != true)
    }
}
