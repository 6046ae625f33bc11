import Foundation

/// What the processor running us can execute beyond the x86-64-v3 baseline TensorCore is built for.
public enum CPUFeatures {
    /// The feature flags of /proc/cpuinfo (Linux); empty elsewhere. The kernel lists a flag only
    /// when it also saves the registers the feature needs (e.g. avx512f only with 512-bit state).
    public static let flags: Set<String> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }()

    /// AVX-512 Foundation, which TensorCoreAVX512's panel kernels need. On macOS (no
    /// /proc/cpuinfo) and on other architectures it is false and they stay unused.
    public static var avx512: Bool {
        #if arch(x86_64)
        flags.contains("avx512f")
        #else
        false
        #endif
    }

    /// AVX2 with FMA, the x86-64-v3 level the package is compiled for on x86-64 Linux (so true on
    /// every Linux x86-64 CPU that runs it) and what TensorCoreAVX2's panel kernels need; false on
    /// macOS, where /proc/cpuinfo does not exist and the row-major kernels run.
    public static var avx2: Bool {
        #if arch(x86_64)
        flags.contains("avx2") && flags.contains("fma")
        #else
        false
        #endif
    }
}
