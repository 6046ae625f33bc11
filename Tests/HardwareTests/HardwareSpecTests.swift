import ConfigFile
import Foundation
import Testing
@testable import Hardware

func hardware(_ json: String) throws -> HardwareSpec {
    try HardwareSpec(json: JSONObject(data: Data(json.utf8), source: "gpu.json"))
}

func hardwareError(_ json: String) -> String {
    do {
        _ = try hardware(json)
        return "no error"
    } catch {
        return "\(error)"
    }
}

let validGPU = #"""
{"schema": "moesim-hardware/1", "id": "test-gpu", "kind": "gpu", "memory_bytes": 85899345920,
 "memory_bandwidth": 3.35e12, "peak_flops": {"bf16": 989e12, "fp8": 1978e12},
 "scale_up_bandwidth": 450e9, "scale_up_domain": 8, "scale_up_latency": 3e-6,
 "scale_out_bandwidth": 50e9, "scale_out_latency": 1e-5,
 "efficiency": {"matmul": 0.7, "memory": 0.8, "scale_up": 0.8, "scale_out": 0.8},
 "gpu_hour_price": 2.5, "sources": {"memory_bytes": "datasheet"}}
"""#

@Suite struct HardwareSpecTests {
    @Test func aValidFileReads() throws {
        let spec = try hardware(validGPU)
        #expect(spec.memoryBytes == 85_899_345_920 && spec.peakFlops["fp8"] == 1978e12 && spec.scaleUpDomain == 8)
        #expect(spec.gpuHourPrice == 2.5 && spec.sources["memory_bytes"] == "datasheet")
    }

    /// The host spec that `moesim calibrate --save` writes reads back unchanged.
    @Test func hostSpecRoundTrips() throws {
        let host = HardwareSpec.host(name: "test CPU", memoryBytes: 1 << 34, gemmFlops: 3e11,
                                     memoryBandwidth: 2.5e10, threads: 2, halfEfficiencyRows: 22, measuredOn: "2026-11-29")
        let read = try HardwareSpec(json: JSONObject(data: host.encoded(), source: "host.json"))
        #expect(read == host)
        #expect(read.kind == .cpu && read.peakFlops["bf16"] == 3e11 && read.efficiency.halfEfficiencyRows == 22)
        #expect(read.threads == 2)
    }

    /// The optional kernel figures (Hopper's block-scaled FP8 factor, the SM count, the NVL72
    /// all-to-all's fixed costs) read from a file and survive a write and a read.
    @Test func optionalKernelFiguresRoundTrip() throws {
        let spec = try hardware(validGPU.replacingOccurrences(of: #""matmul": 0.7,"#, with: #""matmul": 0.7, "block_scaled_fp8_matmul": 0.6,"#))
        #expect(spec.efficiency.blockScaledFP8Matmul == 0.6)
        #expect(try HardwareSpec(json: JSONObject(data: spec.encoded(), source: "again.json")) == spec)
        #expect(try hardware(validGPU).efficiency.blockScaledFP8Matmul == nil)
        let sms = try hardware(validGPU.replacingOccurrences(of: #""scale_up_domain": 8,"#,
                                                             with: #""scale_up_domain": 8, "sm_count": 132, "all_to_all_latency": {"dispatch": 1.9e-5, "combine": 3.1e-5},"#))
        #expect(sms.smCount == 132 && sms.allToAllLatency == HardwareSpec.AllToAllLatency(dispatch: 1.9e-5, combine: 3.1e-5))
        #expect(try HardwareSpec(json: JSONObject(data: sms.encoded(), source: "again.json")) == sms)
        let launches = try hardware(validGPU.replacingOccurrences(of: #""scale_up_domain": 8,"#,
                                                                  with: #""scale_up_domain": 8, "kernel_overhead": 1.84e-5,"#))
        #expect(launches.kernelOverhead == 1.84e-5)
        #expect(try hardware(validGPU).kernelOverhead == nil)
        #expect(try HardwareSpec(json: JSONObject(data: launches.encoded(), source: "again.json")) == launches)
    }

    @Test(arguments: [
        ("memory_bytes", #""memory_bytes": 85899345920"#, #""memory_bytes": 0"#),
        ("memory_bandwidth", #""memory_bandwidth": 3.35e12"#, #""memory_bandwidth": -1"#),
        ("fp7", #""fp8": 1978e12"#, #""fp7": 1978e12"#),
        ("scale_up_domain", #""scale_up_domain": 8"#, #""scale_up_domain": "eight""#),
        ("matmul", #""matmul": 0.7"#, #""matmul": 1.5"#),
        ("half_efficiency_rows", #""matmul": 0.7"#, #""matmul": 0.7, "half_efficiency_rows": -3"#),
        ("block_scaled_fp8_matmul", #""matmul": 0.7"#, #""matmul": 0.7, "block_scaled_fp8_matmul": 0"#),
        ("sm_count", #""scale_up_domain": 8"#, #""scale_up_domain": 8, "sm_count": 0"#),
        ("dispatch", #""scale_up_domain": 8"#, #""scale_up_domain": 8, "all_to_all_latency": {"dispatch": -1, "combine": 3e-5}"#),
        ("kernel_overhead", #""scale_up_domain": 8"#, #""scale_up_domain": 8, "kernel_overhead": 0.5"#),
        ("kernel_overhead", #""scale_up_domain": 8"#, #""scale_up_domain": 8, "kernel_overhead": -1e-6"#),
        ("kind", #""kind": "gpu""#, #""kind": "tpu""#),
        ("schema", #""schema": "moesim-hardware/1""#, #""schema": "other/2""#),
        ("id", #""id": "test-gpu", "#, ""),
    ])
    func invalidFieldsAreNamed(field: String, valid: String, invalid: String) {
        let broken = validGPU.replacingOccurrences(of: valid, with: invalid)
        #expect(broken != validGPU)
        let message = hardwareError(broken)
        #expect(message.contains(field) && message.contains("gpu.json"), "\(message)")
    }

    /// The optional power object reads, and each impossible figure is refused by name.
    @Test func powerFiguresRead() throws {
        let power = #""power": {"tdp_w": 700, "idle_w": 70, "node_overhead_w_per_gpu": 231.5, "conversion_loss": 0.098}"#
        let spec = try hardware(validGPU.replacingOccurrences(of: #""gpu_hour_price": 2.5"#, with: #""gpu_hour_price": 2.5, "# + power))
        #expect(spec.power == PowerSpec(idle: 70, tdp: 700, nodeOverheadPerGPU: 231.5, conversionLoss: 0.098))
        #expect(try hardware(validGPU).power == nil)
        for (good, bad, field) in [(#""idle_w": 70"#, #""idle_w": 700"#, "idle_w"), (#""tdp_w": 700"#, #""tdp_w": -5"#, "tdp_w"),
                                   (#""conversion_loss": 0.098"#, #""conversion_loss": 1.5"#, "conversion_loss")] {
            let broken = power.replacingOccurrences(of: good, with: bad)
            let message = hardwareError(validGPU.replacingOccurrences(of: #""gpu_hour_price": 2.5"#, with: #""gpu_hour_price": 2.5, "# + broken))
            #expect(message.contains(field), "\(message)")
        }
        let missing = power.replacingOccurrences(of: #", "conversion_loss": 0.098"#, with: "")
        #expect(hardwareError(validGPU.replacingOccurrences(of: #""gpu_hour_price": 2.5"#, with: #""gpu_hour_price": 2.5, "# + missing))
            .contains("conversion_loss"))
    }
}
