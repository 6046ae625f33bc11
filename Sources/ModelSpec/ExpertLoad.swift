import Foundation

/// How many distinct experts a batch touches, which sets how many expert weights a step reads.
public enum ExpertLoad {
    /// Expected distinct experts among `experts` when `tokens` tokens each pick `perToken`.
    ///
    /// `skew` = 0 is uniform routing: E·(1 − (1 − k/E)^B). With skew s > 0 expert i (1-based) is
    /// chosen with Zipf probability ∝ i^−s, so each token picks it with probability
    /// q_i = min(1, k·p_i) and the expectation is Σ 1 − (1 − q_i)^B. Skew 0 reproduces the uniform
    /// formula exactly. Real routers sit between: DeepSeek's EPLB reports the hottest expert at a
    /// few times the mean load.
    public static func expectedDistinctExperts(experts: Int, perToken: Int, tokens: Int, skew: Double = 0) -> Double {
        guard experts > 0, perToken > 0, tokens > 0 else { return 0 }
        let e = Double(experts), k = Double(min(perToken, experts)), b = Double(tokens)
        if skew == 0 { return e * (1 - pow(1 - k / e, b)) }
        let weights = (1...experts).map { pow(Double($0), -skew) }
        let total = weights.reduce(0, +)
        return weights.reduce(0) { sum, w in sum + (1 - pow(1 - min(1, k * w / total), b)) }
    }
}
