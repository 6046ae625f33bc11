import Foundation

/// Printing helpers: JSON objects with sorted snake_case keys, aligned tables, SI units.
enum Output {
    static func printJSON(_ object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// Rows of (label, value) with the labels padded to one column.
    static func printTable(_ rows: [(String, String)], indent: String = "  ") {
        let width = rows.map(\.0.count).max() ?? 0
        for (label, value) in rows {
            print(indent + label.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
        }
    }

    static func progress(_ message: String) {
        FileHandle.standardError.write(Data(("… " + message + "\n").utf8))
    }

    static func fixed(_ value: Double, _ digits: Int = 1) -> String {
        String(format: "%.\(digits)f", value)
    }
}
