import Foundation
import Testing
@testable import CPURuntime

/// Broken safetensors files are errors that name the file, never a trap or a terabyte allocation.
@Suite struct SafeTensorsHostileTests {
    /// A file of the given JSON header and `payload` bytes of data.
    func file(header: String, declaredLength: UInt64? = nil, payload: Int = 16) throws -> String {
        let json = Data(header.utf8)
        var data = Data()
        var length = declaredLength ?? UInt64(json.count)
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(json)
        data.append(Data(repeating: 0, count: payload))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("moesim-\(UUID()).safetensors").path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test(arguments: [
        (#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#, UInt64(1) << 62),            // header past the file
        (#"{"w": {"dtype": "Q7", "shape": [65536, 65536, 65536], "data_offsets": [0, 16]}}"#, nil),     // unknown dtype, huge shape
        (#"{"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 16]}}"#, nil),  // shape overflows
        (#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 9000000000000000]}}"#, nil),         // offsets past the end
        (#"{"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}"#, nil),                      // negative dimension
        (#"{"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 16]}}"#, nil),                       // size mismatch
        (#"{"w": {"dtype": "F32"}}"#, nil),                                                              // missing fields
        (#"not json"#, nil),
    ] as [(String, UInt64?)])
    func brokenFilesAreErrors(header: String, declaredLength: UInt64?) throws {
        let path = try file(header: header, declaredLength: declaredLength)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: RuntimeError.self) {
            let f = try SafeTensorsFile(path: path)
            _ = try f.float32("w")
        }
    }
}
