import Foundation

/// An error in a configuration file, naming the file and the field so that a person can fix it.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public let source: String
    public let field: String?
    public let message: String

    public init(source: String, field: String?, message: String) {
        self.source = source
        self.field = field
        self.message = message
    }

    public var description: String {
        if let field { return "\(source): field '\(field)' \(message)" }
        return "\(source): \(message)"
    }
}

/// A JSON object read with typed, checked accessors. Every failure is a `ConfigError` naming the
/// field (with its path inside nested objects) and the file. Shared by the model, hardware and
/// measurement readers so that all files report problems the same way.
public struct JSONObject: @unchecked Sendable {
    public let values: [String: Any]
    public let source: String
    /// Path of this object inside the file, e.g. "text_config." — prefixed to field names in errors.
    public let path: String

    public init(values: [String: Any], source: String, path: String = "") {
        self.values = values
        self.source = source
        self.path = path
    }

    /// Parses `data` as one JSON object. Truncated or non-JSON input, or a top level that is not
    /// an object, is a `ConfigError`.
    public init(data: Data, source: String) throws {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw ConfigError(source: source, field: nil, message: "is not valid JSON (truncated or corrupt?)")
        }
        guard let object = parsed as? [String: Any] else {
            throw ConfigError(source: source, field: nil, message: "must hold one JSON object at the top level")
        }
        self.init(values: object, source: source)
    }

    /// Reads and parses a file.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(source: path, field: nil, message: "cannot be read (missing file or no permission)")
        }
        try self.init(data: data, source: path)
    }

    public func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(source: source, field: path + key, message: message)
    }

    public func has(_ key: String) -> Bool {
        guard let value = values[key] else { return false }
        return !(value is NSNull)
    }

    /// A number that is an exact integer (3 or 3.0, not 3.5, not true).
    public func int(_ key: String) throws -> Int? {
        guard has(key), let value = values[key] else { return nil }
        guard let number = value as? NSNumber, !isBool(number) else {
            throw error(key, "must be an integer")
        }
        let double = number.doubleValue
        guard double.rounded() == double, abs(double) < 9.0e15 else { throw error(key, "must be an integer, got \(number)") }
        return Int(double)
    }

    public func double(_ key: String) throws -> Double? {
        guard has(key), let value = values[key] else { return nil }
        guard let number = value as? NSNumber, !isBool(number), number.doubleValue.isFinite else {
            throw error(key, "must be a number")
        }
        return number.doubleValue
    }

    public func bool(_ key: String) throws -> Bool? {
        guard has(key), let value = values[key] else { return nil }
        guard let number = value as? NSNumber, isBool(number) else { throw error(key, "must be true or false") }
        return number.boolValue
    }

    public func string(_ key: String) throws -> String? {
        guard has(key), let value = values[key] else { return nil }
        guard let text = value as? String else { throw error(key, "must be a string") }
        return text
    }

    public func object(_ key: String) throws -> JSONObject? {
        guard has(key), let value = values[key] else { return nil }
        guard let object = value as? [String: Any] else { throw error(key, "must be an object") }
        return JSONObject(values: object, source: source, path: path + key + ".")
    }

    public func array(_ key: String) throws -> [Any]? {
        guard has(key), let value = values[key] else { return nil }
        guard let array = value as? [Any] else { throw error(key, "must be an array") }
        return array
    }

    public func intArray(_ key: String) throws -> [Int]? {
        guard let array = try array(key) else { return nil }
        return try array.map { element in
            // The same bound as `int`: every element converts to Int exactly.
            guard let number = element as? NSNumber, !isBool(number),
                  number.doubleValue.rounded() == number.doubleValue, abs(number.doubleValue) < 9.0e15 else {
                throw error(key, "must be an array of integers")
            }
            return Int(number.doubleValue)
        }
    }

    public func doubleArray(_ key: String) throws -> [Double]? {
        guard let array = try array(key) else { return nil }
        return try array.map { element in
            guard let number = element as? NSNumber, !isBool(number), number.doubleValue.isFinite else {
                throw error(key, "must be an array of numbers")
            }
            return number.doubleValue
        }
    }

    /// An optional integer, at least `minimum` when present.
    public func int(_ key: String, atLeast minimum: Int) throws -> Int? {
        guard let value = try int(key) else { return nil }
        if value < minimum { throw error(key, "must be at least \(minimum), got \(value)") }
        return value
    }

    public func stringArray(_ key: String) throws -> [String]? {
        guard let array = try array(key) else { return nil }
        return try array.map { element in
            guard let text = element as? String else { throw error(key, "must be an array of strings") }
            return text
        }
    }

    // Required variants with range checks.

    public func requiredInt(_ key: String, atLeast minimum: Int? = nil) throws -> Int {
        guard let value = try int(key) else { throw error(key, "is missing") }
        if let minimum, value < minimum { throw error(key, "must be at least \(minimum), got \(value)") }
        return value
    }

    public func requiredPositive(_ key: String) throws -> Double {
        guard let value = try double(key) else { throw error(key, "is missing") }
        guard value > 0 else { throw error(key, "must be positive, got \(value)") }
        return value
    }

    public func requiredString(_ key: String) throws -> String {
        guard let value = try string(key) else { throw error(key, "is missing") }
        return value
    }

    /// JSON's true and false arrive as NSNumber too; their Objective-C type code is "c" (char),
    /// which no JSON number produces.
    private func isBool(_ number: NSNumber) -> Bool {
        String(cString: number.objCType) == "c"
    }
}
