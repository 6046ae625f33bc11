/// Errors raised by the public TensorCore API. Shape errors name every shape involved, so a caller
/// can tell which operand was wrong without a debugger.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    case shapeMismatch(operation: String, shapes: [[Int]])
    case invalidShape(shape: [Int], reason: String)
    case elementCountMismatch(shape: [Int], elementCount: Int)
    case indexOutOfRange(operation: String, index: Int, bound: Int)
    case invalidArgument(operation: String, reason: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(operation, shapes):
            let list = shapes.map(Self.format).joined(separator: " and ")
            return "\(operation): shapes \(list) do not match"
        case let .invalidShape(shape, reason):
            return "invalid shape \(Self.format(shape)): \(reason)"
        case let .elementCountMismatch(shape, count):
            return "shape \(Self.format(shape)) needs \(shape.reduce(1, *)) elements, got \(count)"
        case let .indexOutOfRange(operation, index, bound):
            return "\(operation): index \(index) is outside 0..<\(bound)"
        case let .invalidArgument(operation, reason):
            return "\(operation): \(reason)"
        }
    }

    static func format(_ shape: [Int]) -> String {
        "[" + shape.map(String.init).joined(separator: ", ") + "]"
    }
}
