import Foundation

/// The rotary frequencies a RoPE spec gives, as transformers computes them
/// (`modeling_rope_utils.py`), for the CPU runtime and for tests.
extension RoPE {
    /// Inverse frequency of each rotating lane pair (rotaryDimension / 2 of them), and the factor
    /// that multiplies cos and sin (YaRN's attention factor; 1 otherwise).
    public var frequencies: (inverse: [Double], attentionFactor: Double) {
        let d = Double(rotaryDimension), pairs = rotaryDimension / 2
        let plain = (0..<pairs).map { 1 / pow(theta, Double(2 * $0) / d) }
        switch scaling {
        case .none:
            return (plain, 1)
        case .dynamic:
            // Unscaled within the trained context (transformers' dynamic_rope_update); past it
            // transformers grows the base with the sequence, which these fixed frequencies do not
            // (the CPU runtime's runs stay far below any trained context).
            return (plain, 1)
        case let .linear(factor):
            return (plain.map { $0 / factor }, 1)
        case let .yarn(factor, originalContext, betaFast, betaSlow, mscale, mscaleAllDim, truncate, attentionFactor):
            // Dimensions rotating fewer than betaSlow times over the original context are
            // interpolated (divided by factor), those rotating more than betaFast times keep their
            // frequency, with a linear ramp between.
            func correctionDimension(_ rotations: Double) -> Double {
                d * log(Double(originalContext) / (rotations * 2 * Double.pi)) / (2 * log(theta))
            }
            var low = correctionDimension(betaFast), high = correctionDimension(betaSlow)
            if truncate { (low, high) = (low.rounded(.down), high.rounded(.up)) }
            low = max(low, 0); high = min(high, d - 1)
            if low == high { high += 0.001 }
            let inverse = (0..<pairs).map { i -> Double in
                let ramp = min(max((Double(i) - low) / (high - low), 0), 1)
                let keep = 1 - ramp
                return plain[i] / factor * (1 - keep) + plain[i] * keep
            }
            let factorOfCosSin = attentionFactor ?? (mscale != 0 && mscaleAllDim != 0
                ? RoPE.yarnScale(factor, mscale) / RoPE.yarnScale(factor, mscaleAllDim)
                : RoPE.yarnScale(factor, 1))
            return (inverse, factorOfCosSin)
        case let .llama3(factor, originalContext, lowFactor, highFactor):
            // Long wavelengths divided by factor, short ones kept, a smooth blend between.
            let old = Double(originalContext)
            let lowWavelength = old / lowFactor, highWavelength = old / highFactor
            return (plain.map { f in
                let wavelength = 2 * Double.pi / f
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / factor }
                let smooth = (old / wavelength - lowFactor) / (highFactor - lowFactor)
                return (1 - smooth) * f / factor + smooth * f
            }, 1)
        }
    }

    /// DeepSeek's MLA multiplies its softmax scale by mscale² under YaRN, mscale from
    /// `mscale_all_dim` (transformers' `yarn_apply_mscale`); 1 otherwise.
    public var latentSoftmaxScale: Double {
        guard case let .yarn(factor, _, _, _, _, mscaleAllDim, _, _) = scaling, mscaleAllDim != 0 else { return 1 }
        let m = RoPE.yarnScale(factor, mscaleAllDim)
        return m * m
    }

    /// YaRN's 0.1 · m · ln(scale) + 1 (1 for scale ≤ 1).
    static func yarnScale(_ scale: Double, _ m: Double) -> Double { scale <= 1 ? 1 : 0.1 * m * log(scale) + 1 }
}
