import Foundation
import Hardware
import ModelSpec

/// The repository the tests run from (its configs/ presets and fixtures), found from this file's
/// own path, and its presets by id.
public let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A model preset from configs/models.
public func model(_ id: String, overrides: [(String, String)] = []) throws -> ModelSpec {
    try ModelSpec(contentsOf: root.appendingPathComponent("configs/models/\(id).json").path, id: id, overrides: overrides)
}

/// An accelerator preset from configs/hardware.
public func gpu(_ id: String) throws -> HardwareSpec {
    try HardwareSpec(contentsOf: root.appendingPathComponent("configs/hardware/\(id).json").path)
}
