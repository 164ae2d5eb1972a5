import ArgumentParser
import ElboCLI
import ElboModels

/// `--hidden 500` or `--hidden 500,500`: one width per hidden layer.
struct LayerWidths: ExpressibleByArgument {
  let widths: [Int]
  init?(argument: String) {
    let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
    let widths = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !widths.isEmpty, widths.count == parts.count else { return nil }
    self.widths = widths
  }
}

extension MADEExperiment: CommandLineModel {
  /// MADE's flags (`elbo train made`, `elbo bench made`).
  public struct Flags: ModelFlags {
    static let defaults = Config()
    @Option(help: withDefault("fashion-mnist, mnist-5k, or a directory of IDX files", defaults.data))
    var data: String?
    @Option(help: withDefault("Hidden widths, comma-separated, one per layer",
                              defaults.hidden.map(String.init).joined(separator: ",")))
    var hidden: LayerWidths?
    @Option(help: withDefault("relu, tanh, elu, softplus or sigmoid", defaults.activation.rawValue))
    var activation: Activation?
    @Option(help: withDefault("Masks drawn from per minibatch (Germain et al.: 32)", defaults.masks))
    var masks: Int?
    @Flag(inversion: .prefixedNo,
          help: "Each mask draws its own input ordering as well (default: natural order).")
    var orderAgnostic: Bool?
    @Option(help: withDefault("Masks averaged by the test log-likelihood", defaults.testMasks))
    var testMasks: Int?
    @Flag(inversion: .prefixedNo, help: "Direct masked input→output connections (default: off).")
    var direct: Bool?
    @Option(help: withDefault("static (threshold 0.5) or dynamic (resampled each epoch)",
                              defaults.binarize.rawValue))
    var binarize: Binarization?

    public init() {}

    public func apply(to c: inout Config) {
      if let data { c.data = data }
      if let hidden { c.hidden = hidden.widths }
      if let activation { c.activation = activation }
      if let masks { c.masks = masks }
      if let orderAgnostic { c.orderAgnostic = orderAgnostic }
      if let testMasks { c.testMasks = testMasks }
      if let direct { c.direct = direct }
      if let binarize { c.binarize = binarize }
    }
  }
}
