/// Heap storage of a tensor: one 64-byte aligned block of Float32, freed with the last owner.
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    @usableFromInline let pointer: UnsafeMutablePointer<Float>
    @usableFromInline let capacity: Int

    @usableFromInline
    init(capacity: Int) {
        self.capacity = capacity
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(capacity, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(capacity, 1))
        pointer.initialize(repeating: 0, count: max(capacity, 1))
    }

    deinit { pointer.deallocate() }
}

/// A dense Float32 tensor: row-major, contiguous, with an explicit shape.
///
/// Value semantics with copy-on-write: `rows(_:)` and `reshaped(_:)` are views that share storage
/// until one of them is written. Hot loops use `withUnsafeBufferPointer` /
/// `withUnsafeMutableBufferPointer` and never index element by element.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    public let shape: [Int]
    public let count: Int
    @usableFromInline var storage: TensorStorage
    @usableFromInline var offset: Int

    /// A tensor of zeros. Throws for a negative dimension.
    public init(zeros shape: [Int]) throws {
        let count = try Tensor.elementCount(of: shape)
        self.shape = shape
        self.count = count
        storage = TensorStorage(capacity: count)
        offset = 0
    }

    /// A tensor holding `elements` in row-major order.
    public init(shape: [Int], elements: [Float]) throws {
        try self.init(zeros: shape)
        guard elements.count == count else {
            throw TensorError.elementCountMismatch(shape: shape, elementCount: elements.count)
        }
        elements.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { storage.pointer.update(from: base, count: count) }
        }
    }

    /// A tensor filled by calling `element` once per position in row-major order.
    public init(shape: [Int], filledBy element: () -> Float) throws {
        try self.init(zeros: shape)
        for i in 0..<count { storage.pointer[i] = element() }
    }

    init(shape: [Int], count: Int, storage: TensorStorage, offset: Int) {
        self.shape = shape
        self.count = count
        self.storage = storage
        self.offset = offset
    }

    static func elementCount(of shape: [Int]) throws -> Int {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else {
                throw TensorError.invalidShape(shape: shape, reason: "dimensions must be non-negative")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw TensorError.invalidShape(shape: shape, reason: "too many elements") }
            count = product
        }
        return count
    }

    public var rank: Int { shape.count }

    /// The elements in row-major order (a copy).
    public var elements: [Float] {
        withUnsafeBufferPointer { Array($0) }
    }

    public var description: String { "Tensor\(TensorError.format(shape))" }

    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        lhs.shape == rhs.shape && lhs.elements == rhs.elements
    }

    /// A view of rows `range` of the first dimension (no copy).
    public func rows(_ range: Range<Int>) throws -> Tensor {
        guard let first = shape.first else {
            throw TensorError.invalidArgument(operation: "rows", reason: "a scalar has no rows")
        }
        guard range.lowerBound >= 0, range.upperBound <= first else {
            throw TensorError.indexOutOfRange(operation: "rows", index: range.upperBound, bound: first + 1)
        }
        let rowSize = first == 0 ? 0 : count / first
        var newShape = shape
        newShape[0] = range.count
        return Tensor(shape: newShape, count: range.count * rowSize, storage: storage,
                      offset: offset + range.lowerBound * rowSize)
    }

    /// The same elements under another shape with the same element count (no copy).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let newCount = try Tensor.elementCount(of: newShape)
        guard newCount == count else {
            throw TensorError.shapeMismatch(operation: "reshape", shapes: [shape, newShape])
        }
        return Tensor(shape: newShape, count: count, storage: storage, offset: offset)
    }

    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer + offset, count: count))
    }

    /// Mutable access; copies the storage first when another tensor shares it.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = TensorStorage(capacity: count)
            copy.pointer.update(from: storage.pointer + offset, count: count)
            storage = copy
            offset = 0
        }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer + offset, count: count))
    }

    /// Element at a full multi-index; for tests and small tools, not for hot loops.
    public func element(at index: [Int]) throws -> Float {
        guard index.count == shape.count else {
            throw TensorError.shapeMismatch(operation: "element(at:)", shapes: [shape, [index.count]])
        }
        var flat = 0
        for (i, dimension) in shape.enumerated() {
            guard index[i] >= 0, index[i] < dimension else {
                throw TensorError.indexOutOfRange(operation: "element(at:)", index: index[i], bound: dimension)
            }
            flat = flat * dimension + index[i]
        }
        return storage.pointer[offset + flat]
    }
}
