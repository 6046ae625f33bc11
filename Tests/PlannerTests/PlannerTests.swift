import Foundation
import Testing
import TestSupport
@testable import Hardware
@testable import ModelSpec
@testable import Planner




func plan(_ m: String, _ g: String, gpus: Int, weights: WeightFormat, context: Int = 4096, concurrency: Int = 1,
          layout: Layout? = nil) throws -> Plan {
    try Planner.plan(model(m), cluster: Cluster(gpu: gpu(g), gpuCount: gpus),
                     workload: Workload(weights: weights, context: context, concurrency: concurrency),
                     options: PlanOptions(layout: layout))
}

/// Public deployment facts, not our own outputs.
@Suite struct PlannerFactTests {
    @Test func deepSeekV3InFP8NeedsMoreThanEightH100sButFitsEightH200s() throws {
        #expect(try !plan("deepseek-v3", "h100-sxm", gpus: 8, weights: .fp8).feasible)
        let h200 = try plan("deepseek-v3", "h200-sxm", gpus: 8, weights: .fp8, context: 131_072, concurrency: 4)
        #expect(h200.feasible)
        #expect((h200.best?.memory.free ?? -1) >= 0)
    }

    @Test func kimiK2InFP8() throws {
        #expect(try !plan("kimi-k2", "h100-sxm", gpus: 8, weights: .fp8).feasible)
        #expect(try !plan("kimi-k2", "h200-sxm", gpus: 8, weights: .fp8, context: 131_072, concurrency: 32).feasible)
        #expect(try plan("kimi-k2", "h200-sxm", gpus: 16, weights: .fp8, context: 131_072, concurrency: 32).feasible)
    }

    @Test func kimiK2InINT4FitsEightH200sWithOneFullContextSequence() throws {
        #expect(try plan("kimi-k2", "h200-sxm", gpus: 8, weights: .int4, context: 262_144, concurrency: 1).feasible)
    }

    @Test func llama2On1H100() throws {
        #expect(try !plan("llama2-70b", "h100-sxm", gpus: 1, weights: .bf16).feasible)
        #expect(try plan("llama2-70b", "h100-sxm", gpus: 1, weights: .fp8).feasible)
    }

    @Test func deepSeekV3InFP4OnEightB200sHoldsEight128KSequences() throws {
        #expect(try plan("deepseek-v3", "b200", gpus: 8, weights: .nvfp4, context: 131_072, concurrency: 8).feasible)
    }

    @Test func infeasiblePlansSayWhatToDo() throws {
        let p = try Planner.plan(model("deepseek-v3"), cluster: Cluster(gpu: gpu("h100-sxm"), gpuCount: 8),
                                 workload: Workload(weights: .fp8), alternatives: [gpu("h200-sxm")])
        let reason = p.reason ?? ""
        #expect(reason.contains("weights need") && reason.contains("h100-sxm"))
        #expect(reason.contains("use ≥ 16 GPUs") && reason.contains("h200-sxm"))
    }
}

/// Conservation laws of the memory model.
@Suite struct PlannerIdentityTests {
    /// Weight bytes summed over all GPUs = the model's bytes, plus the copies the layout makes
    /// (replicas, tensors replicated across tensor-parallel ranks).
    @Test(arguments: [
        Layout(attention: .tensor, tp: 8, ep: 8, pp: 1), Layout(attention: .data, tp: 1, ep: 16, pp: 1),
        Layout(attention: .data, tp: 1, ep: 8, pp: 2), Layout(attention: .tensor, tp: 4, ep: 4, pp: 4),
    ])
    func weightsSumToTheModelTimesItsCopies(layout: Layout) throws {
        let m = try model("deepseek-v3")
        let gpus = 16
        let replicas = try layout.validate(for: m, gpus: gpus)
        let group = layout.groupSize(isMoE: true)
        var sum = 0.0
        for stage in 0..<layout.pp {
            sum += Double(group) * MemoryModel.weightBytesPerGPU(m, layout: layout, stage: stage, format: .fp8)
        }
        sum *= Double(replicas)
        // Expected: experts split exactly; attention-group-sharded tensors × (group / tp) copies;
        // replicated tensors × group copies.
        let tp = Double(layout.attentionGroup)
        var expected = 0.0
        for t in m.weightTensors where t.category != .mtp {
            let bytes = Double(t.quantizable ? WeightFormat.fp8.bytes(rows: t.rows, cols: t.cols) : 2 * t.rows * t.cols) * Double(t.copies)
            switch t.category {
            case .routedExperts: expected += bytes
            case .router, .norms: expected += bytes * Double(group)
            // MLA: the down-projections and norms are whole on every rank, the rest split by tp.
            case .attention: expected += bytes * Double(group) / (t.split == .replicated ? 1 : tp)
            default: expected += bytes * Double(group) / tp
            }
        }
        expected *= Double(replicas)
        #expect(abs(sum - expected) / expected < 1e-9)
        // With DP attention and EP over all GPUs, each GPU holds 1/group of the experts and a full
        // copy of everything else.
        if layout.attention == .data && layout.pp == 1 {
            let experts = Double(m.weightBytes(.fp8) { $0.category == .routedExperts })
            let rest = Double(m.weightBytes(.fp8)) - experts
            #expect(abs(sum - (experts + rest * Double(group))) / sum < 1e-9)
        }
    }

    /// KV bytes summed over GPUs = the KV of the requested sequences × the replication the layout
    /// implies (MLA's latent on every TP rank; GQA heads replicated when tp > kv heads).
    @Test func kvSumsToTheSequencesTimesReplication() throws {
        let mla = try model("deepseek-v3"), gqa = try model("qwen3-235b-a22b")
        let context = 32_768
        for (m, layout, replication) in [
            (mla, Layout(attention: .tensor, tp: 8, ep: 8, pp: 1), 8.0),
            (mla, Layout(attention: .data, tp: 1, ep: 8, pp: 1), 1.0),
            (gqa, Layout(attention: .tensor, tp: 4, ep: 8, pp: 1), 1.0),
            (gqa, Layout(attention: .tensor, tp: 8, ep: 8, pp: 1), 2.0),   // 4 KV heads on 8 ranks
            (gqa, Layout(attention: .tensor, tp: 4, ep: 4, pp: 2), 1.0),
        ] {
            var perSequence = 0.0
            for stage in 0..<layout.pp {
                perSequence += Double(layout.attentionGroup)
                    * MemoryModel.kvBytesPerSequencePerGPU(m, layout: layout, stage: stage, context: context, format: .bf16)
            }
            #expect(abs(perSequence - replication * Double(m.kvCacheBytes(context: context, format: .bf16))) < 1)
        }
    }

    /// The fewest GPUs for a load no cluster under the limit holds is "none", found from memory
    /// alone (the weights plus each sequence's cache stored once outgrow 4,096 GPUs); where the
    /// load fits, the answer is a count whose plan is feasible and the count before it (one fewer
    /// within a node, a node fewer past one) is not.
    @Test func minimumGPUsBoundsByMemory() throws {
        let m = try model("mixtral-8x7b"), h200 = try gpu("h200-sxm")
        let absurd = Workload(weights: .fp8, context: 4096, concurrency: 1 << 40)
        #expect(try Planner.minimumGPUs(m, gpu: h200, workload: absurd) == nil)
        let load = Workload(weights: .fp8, context: 131_072, concurrency: 64)
        let n = try #require(try Planner.minimumGPUs(m, gpu: h200, workload: load))
        func feasible(_ gpus: Int) throws -> Bool {
            try Planner.plan(m, cluster: Cluster(gpu: h200, gpuCount: gpus), workload: load, alternatives: []).feasible
        }
        #expect(try feasible(n))
        let before = n > h200.scaleUpDomain ? n - h200.scaleUpDomain : n - 1
        if before >= 1 { #expect(try !feasible(before), "\(before) GPUs already hold the load") }
    }

    /// More GPUs never lower the cluster's memory, nor the memory left after the weights.
    @Test func moreGPUsNeverLowerTotalMemory() throws {
        let m = try model("kimi-k2"), h200 = try gpu("h200-sxm")
        var lastTotal = 0, lastFree = -Double.infinity
        for gpus in [8, 16, 24, 32, 64] {
            let cluster = try Cluster(gpu: h200, gpuCount: gpus)
            #expect(cluster.totalMemory >= lastTotal)
            lastTotal = cluster.totalMemory
            let free = Double(cluster.totalMemory) * (1 - MemoryModel.reservedFraction) - Double(m.weightBytes(.fp8))
            #expect(free >= lastFree)
            lastFree = free
        }
    }

    /// The engine's memory reserve is memory the KV cache does not get: moving it from 10% to 5%
    /// of each GPU hands the KV cache exactly 5% of the GPU more (weights and activations stay),
    /// and the sequences that fit grow by that over one sequence's cache. Out of [0, 0.9]: refused.
    @Test func memoryReserveIsTakenFromTheKVCache() throws {
        let m = try model("deepseek-r1"), b200 = try gpu("b200")
        let cluster = try Cluster(gpu: b200, gpuCount: 4)
        let layout = Layout(attention: .tensor, tp: 4, ep: 1, pp: 1, moeTP: 4)
        func evaluate(_ reserve: Double) throws -> LayoutPlan {
            try Planner.evaluate(m, cluster: cluster, workload: Workload(weights: .fp8, kvCache: .fp8, context: 9_216, concurrency: 1,
                                                                         memoryReserve: reserve), layout: layout)
        }
        let vllm = try evaluate(0.10), sglang = try evaluate(0.05)
        #expect(sglang.memory.weights == vllm.memory.weights && sglang.memory.activations == vllm.memory.activations)
        let given = sglang.memory.free - vllm.memory.free
        #expect(abs(given - 0.05 * Double(b200.memoryBytes)) < 1e-6 * Double(b200.memoryBytes))
        #expect(abs(vllm.memory.reserved - sglang.memory.reserved - given) < 1)
        let perSequence = Double(MemoryModel.kvBytesPerSequencePerGPU(m, layout: layout, stage: 0, context: 9_216, format: .fp8))
        #expect(abs(Double(sglang.maxConcurrentSequences - vllm.maxConcurrentSequences) - given / perSequence) <= 1)
        #expect(throws: (any Error).self) { try evaluate(0.95) }
        #expect(throws: (any Error).self) { try evaluate(-0.01) }
    }

    @Test func moreGPUsNeverHoldFewerSequences() throws {
        var last = -1
        for gpus in [8, 16, 32] {
            let p = try plan("kimi-k2", "h200-sxm", gpus: gpus, weights: .fp8, context: 131_072)
            let held = p.best?.maxConcurrentSequences ?? 0
            #expect(held >= last)
            last = held
        }
    }
}

@Suite struct TrafficTests {
    /// EP all-to-all bytes = tokens × top-k × hidden × bytes × fraction of chosen experts off-GPU,
    /// on a hand-built 8-expert model over 4 GPUs of one node.
    @Test func expertParallelBytesMatchTheHandFormula() throws {
        let m = try ModelSpec(config: .init(data: Data(#"""
            {"model_type": "mixtral", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 4,
             "intermediate_size": 32, "num_local_experts": 8, "num_experts_per_tok": 2, "num_hidden_layers": 3,
             "vocab_size": 100}
            """#.utf8), source: "tiny.json"), id: "tiny")
        let cluster = try Cluster(gpu: gpu("h200-sxm"), gpuCount: 4)
        let t = Traffic.of(m, layout: Layout(attention: .data, tp: 1, ep: 4, pp: 1), cluster: cluster, dispatchBytes: 1)
        // Per token, per MoE layer: 2 experts × 64 values × 1 byte × 3/4 off-GPU; 3 layers.
        let dispatch = t.components.first { $0.kind == .expertDispatch }
        #expect(dispatch?.scaleUp == 2 * 64 * 1 * 0.75 * 3)
        #expect(dispatch?.scaleOut == 0)
        let combine = t.components.first { $0.kind == .expertCombine }
        #expect(combine?.scaleUp == 2 * 64 * 2 * 0.75 * 3)
    }

    /// Two nodes of 8: of the 15 other GPUs, 7 share the node.
    @Test func twoNodesSplitIntraAndInterNode() throws {
        let m = try model("deepseek-v3")
        let cluster = try Cluster(gpu: gpu("h200-sxm"), gpuCount: 16)
        let t = Traffic.of(m, layout: Layout(attention: .data, tp: 1, ep: 16, pp: 1), cluster: cluster, dispatchBytes: 1)
        let d = try #require(t.components.first { $0.kind == .expertDispatch })
        let perLayer = 8.0 * 7168 * 1 * 58
        #expect(abs(d.scaleUp - perLayer * 7 / 16) < 1e-6)
        #expect(abs(d.scaleOut - perLayer * 8 / 16) < 1e-6)
    }
}

@Suite struct PlacementAndInputTests {
    @Test func balancingWithRedundantExpertsLowersTheImbalance() {
        let skewed = ExpertPlacement.LoadDistribution.zipf(1.0)
        let plain = ExpertPlacement.contiguous(experts: 256, gpus: 32, distribution: skewed)
        let balanced = ExpertPlacement.balanced(experts: 256, gpus: 32, redundant: 32, distribution: skewed)
        #expect(plain.imbalance > 1.2)
        #expect(balanced.imbalance < plain.imbalance)
        // Every expert placed at least once; slots = experts + redundant.
        #expect(Set(balanced.experts.flatMap { $0 }).count == 256)
        #expect(balanced.experts.map(\.count).reduce(0, +) == 288)
        // Load is conserved.
        #expect(abs(balanced.load.reduce(0, +) - 1) < 1e-9 && abs(plain.load.reduce(0, +) - 1) < 1e-9)
        #expect(abs(ExpertPlacement.contiguous(experts: 64, gpus: 8, distribution: .uniform).imbalance - 1) < 1e-12)
    }

    @Test func badClustersAndLayoutsAreClearErrors() throws {
        let h200 = try gpu("h200-sxm")
        #expect(throws: (any Error).self) { try Cluster(gpu: h200, gpuCount: 0) }
        #expect(throws: (any Error).self) { try Cluster(gpu: h200, gpuCount: 12) }
        #expect(throws: (any Error).self) { try Cluster(gpu: h200, gpuCount: 16, gpusPerNode: 16) }
        #expect(throws: (any Error).self) { try Layout.parse("attention=xp") }
        #expect(throws: (any Error).self) { try Layout.parse("tp=0") }
        #expect(throws: (any Error).self) { try Layout.parse("tq=2") }
        let m = try model("deepseek-v3")
        #expect(throws: LayoutError.self) { try Layout(attention: .data, tp: 1, ep: 32, pp: 1).validate(for: m, gpus: 16) }
        #expect(throws: LayoutError.self) { try Layout(attention: .data, tp: 2, ep: 8, pp: 1).validate(for: m, gpus: 8) }
        #expect(throws: LayoutError.self) { try Layout(attention: .tensor, tp: 3, ep: 3, pp: 1).validate(for: m, gpus: 3) }
        #expect(try Layout.parse("attention=dp,tp=1,ep=32,pp=1") == Layout(attention: .data, tp: 1, ep: 32, pp: 1))
    }
}
