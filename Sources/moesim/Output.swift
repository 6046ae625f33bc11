import Foundation

/// Printing helpers: JSON objects with sorted snake_case keys, aligned tables, SI units.
enum Output {
    static func printJSON(_ object: [String: Any]) throws {
        // An answer holding NaN or inf is not an answer (and JSON cannot carry it).
        if let key = nonFinite(object) { throw OutputError("the answer's '\(key)' is not a finite number; nothing printed") }
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

    /// The path of the first NaN or infinite number in a JSON value, if any.
    static func nonFinite(_ value: Any, path: String = "") -> String? {
        switch value {
        case let d as Double: return d.isFinite ? nil : path
        case let object as [String: Any]:
            for (k, v) in object { if let bad = nonFinite(v, path: path.isEmpty ? k : path + "." + k) { return bad } }
        case let array as [Any]:
            for (i, v) in array.enumerated() { if let bad = nonFinite(v, path: "\(path)[\(i)]") { return bad } }
        default: break
        }
        return nil
    }

    static func progress(_ message: String) {
        FileHandle.standardError.write(Data(("… " + message + "\n").utf8))
    }

    static func fixed(_ value: Double, _ digits: Int = 1) -> String {
        String(format: "%.\(digits)f", value)
    }
}

extension Output {
    /// 1026408232448 → "1.03 T", 32861500928 → "32.9 B", 101100000 → "101.1 M".
    static func count(_ value: Int) -> String {
        let v = Double(value)
        switch abs(v) {
        case 1e12...: return fixed(v / 1e12, 3) + " T"
        case 1e9...: return fixed(v / 1e9, 2) + " B"
        case 1e6...: return fixed(v / 1e6, 1) + " M"
        case 1e3...: return fixed(v / 1e3, 1) + " K"
        default: return "\(value)"
        }
    }

    /// Bytes in decimal units (GB = 10⁹ bytes), as GPU memory is marketed.
    static func bytes(_ value: Double) -> String {
        switch abs(value) {
        case 1e12...: return fixed(value / 1e12, 2) + " TB"
        case 1e9...: return fixed(value / 1e9, 1) + " GB"
        case 1e6...: return fixed(value / 1e6, 1) + " MB"
        case 1e3...: return fixed(value / 1e3, 1) + " KB"
        default: return fixed(value, 0) + " B"
        }
    }

    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (value < 0 ? "-" : "") + out
    }
}

extension Output {
    /// A table with a header row; text columns left-aligned, the rest right-aligned.
    static func printColumns(header: [String], rows: [[String]], leftAligned: Int = 1) {
        let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return i < leftAligned ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        print(line(header))
        print(widths.map { String(repeating: "─", count: $0) }.joined(separator: "  "))
        for row in rows { print(line(row)) }
    }
}
