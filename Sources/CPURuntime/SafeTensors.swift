import ConfigFile
import Foundation
import TensorCore

/// A .safetensors file: an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, then the data. The file is memory-mapped; every range is checked
/// against the file before any byte is read, so a truncated file or a header that lies about its
/// offsets is an error, never an out-of-bounds read.
public struct SafeTensorsFile: Sendable {
    public struct Entry: Sendable {
        public let dtype: String
        public let shape: [Int]
        public let range: Range<Int>
    }

    public let path: String
    public let entries: [String: Entry]
    let data: Data

    static let elementBytes = ["F32": 4, "BF16": 2, "F16": 2, "F64": 8, "I64": 8, "I32": 4, "I8": 1, "U8": 1, "BOOL": 1,
                               "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "U32": 4, "U64": 8]

    public init(path: String) throws {
        self.path = path
        let url = URL(fileURLWithPath: path)
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw RuntimeError.corruptFile(file: path, reason: "cannot be read")
        }
        guard data.count >= 8 else { throw RuntimeError.corruptFile(file: path, reason: "shorter than its 8-byte header length") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(data[data.startIndex + i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(data.count - 8) else {
            throw RuntimeError.corruptFile(file: path, reason: "header length \(headerLength) exceeds the file (\(data.count) bytes)")
        }
        let base = 8 + Int(headerLength)
        let header: JSONObject
        do {
            header = try JSONObject(data: data.subdata(in: (data.startIndex + 8)..<(data.startIndex + base)), source: path)
        } catch {
            throw RuntimeError.corruptFile(file: path, reason: "header is not a JSON object")
        }
        var entries: [String: Entry] = [:]
        for name in header.values.keys where name != "__metadata__" {
            guard let info = try? header.object(name), let dtype = try? info.string("dtype"),
                  let shape = try? info.intArray("shape"), let offsets = try? info.intArray("data_offsets"),
                  offsets.count == 2 else {
                throw RuntimeError.corruptFile(file: path, reason: "header entry '\(name)' lacks dtype, shape or data_offsets")
            }
            guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[0] <= offsets[1],
                  offsets[1] <= data.count - base else {
                throw RuntimeError.corruptFile(file: path, reason: "tensor '\(name)' has offsets \(offsets) outside the file")
            }
            // Every tensor's element count is bounded (2^40), whatever its dtype: a later read or
            // allocation multiplies it out.
            let (count, overflow) = shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            guard !overflow, count <= 1 << 40 else {
                throw RuntimeError.corruptFile(file: path, reason: "tensor '\(name)' has shape \(shape): too many elements")
            }
            if let size = SafeTensorsFile.elementBytes[dtype] {
                guard count * size == offsets[1] - offsets[0] else {
                    throw RuntimeError.corruptFile(file: path,
                                                   reason: "tensor '\(name)' has \(offsets[1] - offsets[0]) bytes for shape \(shape) of \(dtype)")
                }
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: (base + offsets[0])..<(base + offsets[1]))
        }
        self.entries = entries
        self.data = data
    }

    /// The tensor as Float32 (F32 copied; BF16 and F16 widened; I64 and I32 converted).
    public func float32(_ name: String) throws -> Tensor {
        guard let entry = entries[name] else { throw RuntimeError.missingTensor(name: name, folder: path) }
        // Only dtypes whose size was checked against the file are allocated.
        guard SafeTensorsFile.elementBytes[entry.dtype] != nil else { throw RuntimeError.unsupportedDType(name: name, dtype: entry.dtype) }
        var tensor = try Tensor(zeros: entry.shape)
        try tensor.withUnsafeMutableBufferPointer { out in
            if let base = out.baseAddress { try read(name, into: base) }
        }
        return tensor
    }

    /// Writes the tensor's values as Float32 to `out` (room for all of them), straight from the
    /// mapped file: no intermediate copy.
    func read(_ name: String, into out: UnsafeMutablePointer<Float>) throws {
        guard let entry = entries[name] else { throw RuntimeError.missingTensor(name: name, folder: path) }
        try read(name, elements: 0..<entry.shape.reduce(1, *), into: out)
    }

    /// Writes elements `elements` (flat, row-major) of the tensor as Float32 to `out`.
    func read(_ name: String, elements: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        guard let entry = entries[name] else { throw RuntimeError.missingTensor(name: name, folder: path) }
        guard elements.lowerBound >= 0, elements.upperBound <= entry.shape.reduce(1, *) else {
            throw RuntimeError.corruptFile(file: path, reason: "read of \(name) past its end")
        }
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[entry.range])
            let first = elements.lowerBound
            switch entry.dtype {
            case "F32":
                for i in 0..<elements.count { out[i] = bytes.loadUnaligned(fromByteOffset: 4 * (first + i), as: Float.self) }
            case "BF16":
                for i in 0..<elements.count {
                    out[i] = Float(bitPattern: UInt32(bytes.loadUnaligned(fromByteOffset: 2 * (first + i), as: UInt16.self)) << 16)
                }
            case "F16":
                for i in 0..<elements.count {
                    out[i] = Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: 2 * (first + i), as: UInt16.self)))
                }
            // Integer tables (DeepSeek-V4's token → expert map): exact as Float32 below 2^24; the
            // reader of such a table checks its range.
            case "I64":
                for i in 0..<elements.count { out[i] = Float(bytes.loadUnaligned(fromByteOffset: 8 * (first + i), as: Int64.self)) }
            case "I32":
                for i in 0..<elements.count { out[i] = Float(bytes.loadUnaligned(fromByteOffset: 4 * (first + i), as: Int32.self)) }
            default:
                throw RuntimeError.unsupportedDType(name: name, dtype: entry.dtype)
            }
        }
    }
}

/// Every tensor of a HuggingFace model folder (one or more *.safetensors files), by name.
public struct SafeTensorsFolder: Sendable {
    public let folder: String
    let files: [SafeTensorsFile]

    public init(folder: String) throws {
        self.folder = folder
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
            throw RuntimeError.corruptFile(file: folder, reason: "is not a readable folder")
        }
        let weights = names.filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !weights.isEmpty else { throw RuntimeError.corruptFile(file: folder, reason: "has no .safetensors files") }
        files = try weights.map { try SafeTensorsFile(path: folder + "/" + $0) }
    }

    public func has(_ name: String) -> Bool { files.contains { $0.entries[name] != nil } }

    /// The tensor `name`, checked against `shape`.
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        try file(holding: name, shape: shape).float32(name)
    }

    /// Writes tensor `name`, checked against `shape`, as Float32 to `out`.
    func read(_ name: String, shape: [Int], into out: UnsafeMutablePointer<Float>) throws {
        try file(holding: name, shape: shape).read(name, into: out)
    }

    /// Writes rows `rows` of the matrix `name`, checked against `shape`, as Float32 to `out`.
    func read(_ name: String, shape: [Int], rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let cols = shape.count == 2 ? shape[1] : 1
        try file(holding: name, shape: shape).read(name, elements: (rows.lowerBound * cols)..<(rows.upperBound * cols), into: out)
    }

    private func file(holding name: String, shape: [Int]) throws -> SafeTensorsFile {
        guard let file = files.first(where: { $0.entries[name] != nil }) else {
            throw RuntimeError.missingTensor(name: name, folder: folder)
        }
        let found = file.entries[name]?.shape ?? []
        guard found == shape else { throw RuntimeError.tensorShape(name: name, expected: shape, found: found) }
        return file
    }
}
