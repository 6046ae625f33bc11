import Foundation

/// Facts about the machine this process runs on, as the operating system reports them.
public enum HostInfo {
    /// The CPU model name ("Intel(R) Xeon(R) Processor"), or "unknown CPU".
    public static var cpuName: String {
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return "unknown CPU"
    }

    /// Physical memory in bytes.
    public static var memoryBytes: Int {
        Int(ProcessInfo.processInfo.physicalMemory)
    }
}
