/// The buffers of a forward pass, grown to the largest batch seen and then reused, so that a
/// decode step allocates nothing once the first steps have sized them.
final class Workspace {
    enum Slot: Int, CaseIterable {
        case x, normed, delta, qkv, context, scores, rope
        case down, qA, qANormed, q, latent, latentNormed, rotary, expanded, mlaScratch
        case routerLogits, routerScratch, routeWeights, packed, gateUp, activated, expertOut, shared, sharedGate
        case mlpGateUp, mlpActivated, lastRows, lastNormed
    }

    private var floats: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)]
    private var ints: (pointer: UnsafeMutablePointer<Int32>, capacity: Int)
    var grouping: ExpertGroupingBox
    var segments: [(start: Int, count: Int)] = []
    var touched: [Bool] = []

    init(experts: Int) {
        floats = Slot.allCases.map { _ in (UnsafeMutablePointer<Float>.allocate(capacity: 1), 1) }
        ints = (UnsafeMutablePointer<Int32>.allocate(capacity: 1), 1)
        grouping = ExpertGroupingBox(experts: experts)
        touched = Array(repeating: false, count: experts)
    }

    /// At least `count` floats; the contents are whatever the last user left.
    func get(_ slot: Slot, _ count: Int) -> UnsafeMutablePointer<Float> {
        let i = slot.rawValue
        if floats[i].capacity < count {
            floats[i].pointer.deallocate()
            floats[i] = (UnsafeMutablePointer<Float>.allocate(capacity: count), count)
        }
        return floats[i].pointer
    }

    /// At least `count` expert ids.
    func ids(_ count: Int) -> UnsafeMutablePointer<Int32> {
        if ints.capacity < count {
            ints.pointer.deallocate()
            ints = (UnsafeMutablePointer<Int32>.allocate(capacity: count), count)
        }
        return ints.pointer
    }

    deinit {
        for f in floats { f.pointer.deallocate() }
        ints.pointer.deallocate()
    }
}

import TensorCore

/// The expert grouping, kept in a class so that regrouping reuses its arrays in place.
final class ExpertGroupingBox {
    var value: ExpertGrouping
    init(experts: Int) { value = ExpertGrouping(expertCount: experts) }
}
