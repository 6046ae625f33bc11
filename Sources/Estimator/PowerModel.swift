import Hardware

/// Where a measured or estimated energy figure stops: the GPU boards (what NVML / rocm-smi read),
/// the servers' IT power (boards plus conversion loss plus CPUs, NICs, fans: what a wall meter or
/// MLPerf Power reads), or the data centre (IT power times PUE).
public enum EnergyScope: String, Sendable, CaseIterable {
    case gpu, node, facility
}

/// The power one GPU draws in a step, from where the step's time goes.
///
/// A GPU's board power moves between its idle power and its power limit with what it does. Over a
/// step of the estimator's time split (compute-bound operators, memory-bound operators, exposed
/// communication, launch overhead) it is
///
///     P = idle + (TDP − idle) × Σ activityᵢ × tᵢ / T
///
/// with one activity per kind of time, a property of how GPUs spend power, not of one GPU:
/// - compute-bound: 1. Sustained dense matrix products run GPUs at their power limit (Patel et al.,
///   "Splitwise", ISCA 2024: the prompt phase of Llama-2-70B and BLOOM-176B on 8 × H100 draws close
///   to TDP; "POLCA", ASPLOS 2024: training-like GEMMs sit at the cap).
/// - memory-bound: 0.5. Streaming HBM keeps the memory system and the load units busy while the
///   tensor cores mostly wait: Splitwise measures the token phase well under TDP and barely
///   slowed by a power cap; decode on H200 draws 137–300 W of 700 (Ma et al., arXiv 2605.11999).
/// - communication: 0.25. NCCL and all-to-all kernels use a few SMs and the links; the rest idle.
/// - overhead (launch gaps, the CPU-side scheduler): 0.15, close to idle with clocks up.
/// These four are the only constants; `docs/energy.md` checks them on published figures.
public enum PowerModel {
    public static let computeActivity = 1.0
    public static let memoryActivity = 0.5
    public static let communicationActivity = 0.25
    public static let overheadActivity = 0.15

    /// Average board power of one GPU over `step`, in watts.
    public static func gpuWatts(_ step: StepTime, _ power: PowerSpec) -> Double {
        let total = step.total
        guard total > 0, total.isFinite else { return power.idle }
        let activity = (computeActivity * step.compute + memoryActivity * step.memory
            + communicationActivity * step.communication + overheadActivity * step.overhead) / total
        return power.idle + (power.tdp - power.idle) * min(max(activity, 0), 1)
    }

    /// Power per GPU at `scope` for a GPU board drawing `gpuWatts`.
    public static func watts(gpuWatts: Double, _ power: PowerSpec, scope: EnergyScope, pue: Double) -> Double {
        switch scope {
        case .gpu: gpuWatts
        case .node: gpuWatts * (1 + power.conversionLoss) + power.nodeOverheadPerGPU
        case .facility: (gpuWatts * (1 + power.conversionLoss) + power.nodeOverheadPerGPU) * pue
        }
    }
}
