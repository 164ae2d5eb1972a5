import ArgumentParser
import ElboCLI
import ElboModels

extension TestEnergy: ExpressibleByArgument {}
extension Flow2D.Base: ExpressibleByArgument {}
extension Flow2D.Posterior: ExpressibleByArgument {}

/// `--flow KIND`: any kind the flow library names (whether it is built is checked by the
/// config, with one line naming the kinds that are).
struct Flow2DKind: ExpressibleByArgument {
  let kind: FlowKind
  init?(argument: String) {
    guard let k = FlowKind(rawValue: argument) else { return nil }
    kind = k
  }
  static var allValueStrings: [String] { FlowKind.allCases.map(\.rawValue) }
}

extension Flow2DExperiment: CommandLineModel {
  /// flow-2d's flags (`elbo train flow-2d`, `elbo bench flow-2d`).
  public struct Flags: ModelFlags {
    static let defaults = Config()
    @Option(help: withDefault("u1 (the ring), u2, u3, u4 (the sinusoids), gaussian, or two-modes (N(±(2, 2), I) mixed 1:1)",
                              defaults.target.rawValue))
    var target: TestEnergy?
    @Option(help: withDefault("Flow kind: " + FlowKind.allCases.map(\.rawValue)
                                .joined(separator: ", "), defaults.flow.kind.rawValue))
    var flow: Flow2DKind?
    @Option(help: withDefault("K, flows in the chain (0: the base alone)", defaults.flow.length))
    var flowLength: Int?
    @Option(help: withDefault("Base q₀: diagonal (N(μ, diag σ²), learned) or standard (N(0, I))",
                              defaults.base.rawValue))
    var base: Flow2D.Base?
    @Option(help: withDefault("q: flow (q₀ through the flow chain), gaussian (mean-field), "
                                + "semi-implicit (fitted by SIVI's surrogate) or uivi (by UIVI's "
                                + "HMC score)", defaults.posterior.rawValue))
    var posterior: Flow2D.Posterior?
    @Option(help: withDefault("K, the extra mixing draws of SIVI's surrogate of log q "
                                + "(semi-implicit, and uivi's logged log q)", defaults.mixSamples))
    var mixSamples: Int?
    @Option(help: withDefault("uivi: HMC burn-in iterations per step", defaults.hmcBurnIn))
    var hmcBurnIn: Int?
    @Option(help: withDefault("uivi: HMC kept samples per step", defaults.hmcSamples))
    var hmcSamples: Int?
    @Option(help: withDefault("uivi: leapfrog steps per HMC iteration", defaults.hmcLeapfrogSteps))
    var hmcLeapfrogSteps: Int?
    @Option(help: withDefault("uivi: HMC step size", defaults.hmcStepSize))
    var hmcStepSize: Float?
    @Option(help: withDefault("Noise rows per epoch (an evaluation and pictures at each end)",
                              defaults.samplesPerEpoch))
    var samplesPerEpoch: Int?
    @Option(help: withDefault("Samples of the held-out KL estimate", defaults.evalSamples))
    var evalSamples: Int?
    @Option(help: withDefault("Warm-up T: U weighted by β_t = min(1, 0.01 + t/T); 0 for none",
                              defaults.warmupSteps))
    var warmupSteps: Int?

    public init() {}

    public func apply(to c: inout Config) {
      if let target { c.target = target }
      if let flow { c.flow.kind = flow.kind }
      if let flowLength { c.flow.length = flowLength }
      if let base { c.base = base }
      if let posterior { c.posterior = posterior }
      if let mixSamples { c.mixSamples = mixSamples }
      if let hmcBurnIn { c.hmcBurnIn = hmcBurnIn }
      if let hmcSamples { c.hmcSamples = hmcSamples }
      if let hmcLeapfrogSteps { c.hmcLeapfrogSteps = hmcLeapfrogSteps }
      if let hmcStepSize { c.hmcStepSize = hmcStepSize }
      if let samplesPerEpoch { c.samplesPerEpoch = samplesPerEpoch }
      if let evalSamples { c.evalSamples = evalSamples }
      if let warmupSteps { c.warmupSteps = warmupSteps }
    }
  }
}
