import Hardware
import ModelSpec
import Planner

/// The estimator's prediction of a `moesim bench` run on the host it was calibrated on: the host as
/// one "GPU" (no parallelism), the model's weights in the CPU runtime's format, a Float32 KV cache,
/// and the bench's batch, prompt and generated lengths.
public enum CPUCheck {
    public static func predict(_ spec: ModelSpec, host: HardwareSpec, weights: WeightFormat,
                               batch: Int, prompt: Int, generate: Int) throws -> Estimate {
        let cluster = try Cluster(gpu: host, gpuCount: 1)
        let request = EstimateRequest(model: spec, cluster: cluster, layout: Layout(attention: .tensor, tp: 1, ep: 1, pp: 1),
                                      weights: weights, kvCache: .f32, inputTokens: prompt, outputTokens: generate,
                                      decodeBatchPerGPU: batch, prefillTokensPerGPU: batch * prompt)
        return try Estimator.estimate(request)
    }
}
