/// Selection of the k largest entries of a row, the core of every MoE router.
///
/// Tie rule: among equal values the lower index ranks first (what `torch.topk` does on CPU for
/// the routers we check against). NaN is treated as -inf.
public enum TopK {
    /// Writes the k largest of `x[0..<count]`, largest first, into `indices` and `values`.
    /// Requires 1 ≤ k ≤ count (checked by the callers that take k from a user).
    @inlinable
    public static func select(_ x: UnsafePointer<Float>, count: Int, k: Int,
                              indices: UnsafeMutablePointer<Int32>, values: UnsafeMutablePointer<Float>) {
        var filled = 0
        for i in 0..<count {
            let v = x[i].isNaN ? -Float.infinity : x[i]
            if filled == k {
                // Strictly greater than the current k-th: equal values keep the earlier index.
                guard v > values[k - 1] else { continue }
            }
            // The slot after every kept entry that is >= v: an earlier index wins a tie.
            var slot = filled == k ? k - 1 : filled
            while slot > 0 && values[slot - 1] < v {
                values[slot] = values[slot - 1]
                indices[slot] = indices[slot - 1]
                slot -= 1
            }
            values[slot] = v
            indices[slot] = Int32(i)
            if filled < k { filled += 1 }
        }
    }

    /// Array form for tests and tools: the indices of the k largest, largest first.
    public static func indices(of row: [Float], k: Int) throws -> [Int] {
        guard k >= 1, k <= row.count else {
            throw TensorError.invalidArgument(operation: "top-k", reason: "k = \(k) must be in 1...\(row.count)")
        }
        var indices = [Int32](repeating: 0, count: k)
        var values = [Float](repeating: 0, count: k)
        row.withUnsafeBufferPointer { source in
            indices.withUnsafeMutableBufferPointer { i in
                values.withUnsafeMutableBufferPointer { v in
                    guard let x = source.baseAddress, let ip = i.baseAddress, let vp = v.baseAddress else { return }
                    select(x, count: row.count, k: k, indices: ip, values: vp)
                }
            }
        }
        return indices.map(Int.init)
    }
}
