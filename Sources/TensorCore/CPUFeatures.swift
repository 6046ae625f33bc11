#if canImport(Glibc)
import Glibc
#endif

/// What the processor running us can execute beyond the x86-64-v3 baseline TensorCore is built for.
public enum CPUFeatures {
    /// AVX-512 Foundation, enabled by the operating system. On Linux the kernel lists `avx512f` in
    /// /proc/cpuinfo only when it also saves the 512-bit register state, so the flag is the whole
    /// check. Elsewhere (macOS, other architectures) it is false and the panel kernels stay unused.
    public static let avx512: Bool = {
        #if os(Linux) && arch(x86_64)
        guard let file = fopen("/proc/cpuinfo", "r") else { return false }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            let text = String(cString: line)
            if text.hasPrefix("flags") { return text.split(separator: " ").contains { $0 == "avx512f" } }
        }
        return false
        #else
        return false
        #endif
    }()
}
