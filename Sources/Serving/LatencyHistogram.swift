import Foundation

/// Percentiles of a latency over any number of requests in bounded memory: counts in buckets
/// whose edges grow by 1% (a value is placed within 1% of itself), from 1 µs to about 106 days.
/// Weights may be fractional (the replicas of a symmetric simulation).
struct LatencyHistogram: Sendable {
    static let growth = 1.01
    static let floor = 1e-6
    static let bucketCount = 3_000
    private var counts = [Double](repeating: 0, count: bucketCount)
    private(set) var total = 0.0
    private(set) var sum = 0.0

    static func bucket(_ seconds: Double) -> Int {
        guard seconds > floor else { return 0 }
        return min(bucketCount - 1, Int((log(seconds / floor) / log(growth)).rounded(.up)))
    }

    /// The upper edge of a bucket: every value in it is at most this and more than 1/1.01 of it.
    static func value(_ bucket: Int) -> Double { floor * pow(growth, Double(bucket)) }

    mutating func add(_ seconds: Double, weight: Double = 1) {
        guard weight > 0, seconds.isFinite else { return }
        counts[Self.bucket(seconds)] += weight
        total += weight
        sum += seconds * weight
    }

    mutating func merge(_ other: LatencyHistogram, weight: Double) {
        guard weight > 0 else { return }
        for i in counts.indices where other.counts[i] > 0 { counts[i] += other.counts[i] * weight }
        total += other.total * weight
        sum += other.sum * weight
    }

    /// The q-quantile (nearest rank on the cumulative weight); nil when empty.
    func quantile(_ q: Double) -> Double? {
        guard total > 0 else { return nil }
        let target = q * total
        var seen = 0.0
        for (i, c) in counts.enumerated() where c > 0 {
            seen += c
            if seen >= target - 1e-9 * total { return Self.value(i) }
        }
        return nil
    }

    var mean: Double? { total > 0 ? sum / total : nil }
}
