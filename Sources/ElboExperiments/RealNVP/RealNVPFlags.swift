import ArgumentParser
import ElboCLI
import ElboModels

extension CouplingMask: ExpressibleByArgument {}

extension RealNVPExperiment: CommandLineModel {
  /// Real NVP's flags (`elbo train realnvp`, `elbo bench realnvp`).
  public struct Flags: ModelFlags {
    static let defaults = Config()
    @Option(help: withDefault("two-moons, checkerboard, 8-gaussians, fashion-mnist, mnist-5k, "
                                + "or a directory of IDX files", defaults.data))
    var data: String?
    @Option(help: withDefault("Coupling layers K", defaults.couplings)) var couplings: Int?
    @Option(help: withDefault("Hidden widths of each coupling MLP, comma-separated",
                              defaults.hidden.map(String.init).joined(separator: ",")))
    var hidden: LayerWidths?
    @Option(help: withDefault("alternating (even/odd coordinates) or halves", defaults.mask.rawValue))
    var mask: CouplingMask?
    @Option(help: withDefault("relu, tanh, elu, softplus or sigmoid", defaults.activation.rawValue))
    var activation: Activation?
    @Option(help: withDefault("α of the logit transform of images", defaults.alpha))
    var alpha: Double?
    @Option(help: withDefault("Training points generated for a 2-D toy", defaults.toyTrain))
    var toyTrain: Int?
    @Option(help: withDefault("Test points generated for a 2-D toy", defaults.toyTest))
    var toyTest: Int?

    public init() {}

    public func apply(to c: inout Config) {
      if let data { c.data = data }
      if let couplings { c.couplings = couplings }
      if let hidden { c.hidden = hidden.widths }
      if let mask { c.mask = mask }
      if let activation { c.activation = activation }
      if let alpha { c.alpha = alpha }
      if let toyTrain { c.toyTrain = toyTrain }
      if let toyTest { c.toyTest = toyTest }
    }
  }
}
