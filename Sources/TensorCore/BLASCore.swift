import COpenBLAS
import Foundation

/// Which OpenBLAS kernel family runs, and the fix for CPUs that OpenBLAS does not recognise.
///
/// Debian's OpenBLAS (0.3.21) is built with DYNAMIC_ARCH and picks its kernels from the CPU model
/// number at load time. CPUs newer than the build (this machine's Xeon, model 207) fall back to
/// "Prescott", an SSE3 kernel that runs GEMM about 5× slower than the AVX-512 one. The kernel set
/// can only be chosen through `OPENBLAS_CORETYPE` before the library loads, so the moesim tool
/// re-executes itself once with that variable set, chosen from the CPU's own feature flags.
/// A value the user set is never changed.
public enum BLASCore {
    /// The kernel family in use, e.g. "SkylakeX", "Haswell", "Prescott".
    public static var name: String {
        guard let raw = openblas_get_corename() else { return "unknown" }
        return String(cString: raw)
    }

    /// Pre-AVX kernel families that OpenBLAS falls back to for an unknown x86 CPU.
    static let genericFamilies: Set<String> = [
        "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai", "Coppermine",
        "Northwood", "Banias", "Opteron", "Opteron_SSE3", "Barcelona", "Unknown",
    ]

    /// The best kernel family for a CPU with these /proc/cpuinfo flags, or nil when only the
    /// generic kernels apply.
    public static func recommendedFamily(flags: Set<String>) -> String? {
        if ["avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512cd"].allSatisfy(flags.contains) {
            return "SkylakeX"
        }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// Whether OpenBLAS fell back to one of the generic families.
    public static var isGeneric: Bool { genericFamilies.contains(name) }

    /// When OpenBLAS fell back to a generic family on a CPU that can run a better one and the user
    /// did not set OPENBLAS_CORETYPE: sets it and re-executes this process with the same
    /// arguments. Returns (doing nothing) in every other case, including a failed exec.
    public static func reexecWithOptimizedKernelsIfNeeded() {
        guard getenv("OPENBLAS_CORETYPE") == nil, isGeneric,
              let family = recommendedFamily(flags: CPUFeatures.flags) else { return }
        setenv("OPENBLAS_CORETYPE", family, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached when exec failed: carry on with the generic kernels.
    }
}
