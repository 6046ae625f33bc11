/// Errors of the CPU runtime, each naming what to fix.
import Foundation

extension CPUModel {
    /// Refuses to allocate what this machine cannot hold: more than 80% of its physical memory
    /// (the rest for the system and this process's own buffers), with how much it would take.
    public static func checkMemory(bytes: Double, what: String) throws {
        let physical = Double(ProcessInfo.processInfo.physicalMemory)
        let available = physical * 0.8
        guard bytes.isFinite, bytes <= available else {
            throw RuntimeError.unsupported("\(what) would take \(String(format: "%.1f", bytes / 1e9)) GB; this machine has "
                + "\(String(format: "%.1f", physical / 1e9)) GB (use a larger --scale or fewer --layers)")
        }
    }
}

public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    case corruptFile(file: String, reason: String)
    case missingTensor(name: String, folder: String)
    case tensorShape(name: String, expected: [Int], found: [Int])
    case unsupportedDType(name: String, dtype: String)
    case tokenOutOfRange(token: Int, vocabulary: Int)
    case unsupported(String)

    public var description: String {
        switch self {
        case let .corruptFile(file, reason): "\(file): \(reason)"
        case let .missingTensor(name, folder): "tensor '\(name)' is missing from the safetensors files in \(folder)"
        case let .tensorShape(name, expected, found): "tensor '\(name)' has shape \(found), expected \(expected)"
        case let .unsupportedDType(name, dtype): "tensor '\(name)' has dtype \(dtype); supported: F32, BF16, F16"
        case let .tokenOutOfRange(token, vocabulary): "token id \(token) is outside the vocabulary 0..<\(vocabulary)"
        case let .unsupported(text): text
        }
    }
}
