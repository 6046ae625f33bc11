import Foundation

/// Where the preset files (configs/models, configs/hardware, configs/validation) are found.
///
/// Search order: `$MOESIM_CONFIGS` (the configs folder itself); then a `configs` folder next to
/// the executable or in any folder above it (a build inside the repository finds the repository's
/// configs); then `configs` in the current directory or above it.
public enum ConfigDirectory {
    public static func locate() -> String? {
        let fm = FileManager.default
        if let explicit = ProcessInfo.processInfo.environment["MOESIM_CONFIGS"], !explicit.isEmpty {
            return explicit
        }
        var starts: [URL] = []
        if let exe = Bundle.main.executableURL { starts.append(exe.resolvingSymlinksInPath().deletingLastPathComponent()) }
        starts.append(URL(fileURLWithPath: fm.currentDirectoryPath))
        for start in starts {
            var folder = start
            for _ in 0..<8 {
                let candidate = folder.appendingPathComponent("configs")
                var isDirectory: ObjCBool = false
                if fm.fileExists(atPath: candidate.appendingPathComponent("models").path, isDirectory: &isDirectory),
                   isDirectory.boolValue {
                    return candidate.path
                }
                let parent = folder.deletingLastPathComponent()
                if parent.path == folder.path { break }
                folder = parent
            }
        }
        return nil
    }

    /// The ids (file names without .json) in a subfolder of the configs folder, sorted.
    public static func ids(in subfolder: String) -> [String] {
        guard let root = locate(),
              let names = try? FileManager.default.contentsOfDirectory(atPath: root + "/" + subfolder) else { return [] }
        return names.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// The path of a preset or of a user's file: an existing path wins, else configs/SUBFOLDER/ID.json.
    /// The error lists the presets.
    public static func resolve(_ reference: String, in subfolder: String, kind: String) throws -> (path: String, id: String) {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if reference.contains("/") || reference.hasSuffix(".json") {
            if fm.fileExists(atPath: reference, isDirectory: &isDirectory) {
                if isDirectory.boolValue {
                    let config = reference + "/config.json"
                    if fm.fileExists(atPath: config) {
                        return (config, URL(fileURLWithPath: reference).lastPathComponent)
                    }
                    throw ConfigError(source: reference, field: nil, message: "is a folder without a config.json")
                }
                return (reference, URL(fileURLWithPath: reference).deletingPathExtension().lastPathComponent)
            }
            throw ConfigError(source: reference, field: nil, message: "no such file")
        }
        if let root = locate() {
            let path = root + "/" + subfolder + "/" + reference + ".json"
            if fm.fileExists(atPath: path) { return (path, reference) }
        }
        let known = ids(in: subfolder)
        let list = known.isEmpty ? "no presets found (set MOESIM_CONFIGS to the repository's configs folder)"
                                 : "presets: " + known.joined(separator: ", ")
        throw ConfigError(source: reference, field: nil, message: "is not a \(kind) preset or a path to a file; \(list)")
    }
}
