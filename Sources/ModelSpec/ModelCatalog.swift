import ConfigFile

/// Model presets (configs/models/ID.json, HuggingFace config.json files kept unchanged) and
/// users' own config files, by one name.
public enum ModelCatalog {
    public static var presetIDs: [String] { ConfigDirectory.ids(in: "models") }

    /// A preset id ("kimi-k2"), a path to a config.json, or a HuggingFace model folder.
    public static func load(_ reference: String, overrides: [(String, String)] = []) throws -> ModelSpec {
        let (path, id) = try ConfigDirectory.resolve(reference, in: "models", kind: "model")
        return try ModelSpec(contentsOf: path, id: id, overrides: overrides)
    }
}
