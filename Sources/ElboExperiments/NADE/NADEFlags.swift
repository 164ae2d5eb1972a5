import ArgumentParser
import ElboCLI
import ElboModels

extension NADEExperiment: CommandLineModel {
  /// NADE's flags (`elbo train nade`, `elbo bench nade`).
  public struct Flags: ModelFlags {
    static let defaults = Config()
    @Option(help: withDefault("fashion-mnist, mnist-5k, or a directory of IDX files", defaults.data))
    var data: String?
    @Option(help: withDefault("Hidden units H", defaults.hidden)) var hidden: Int?
    @Option(help: withDefault("static (threshold 0.5) or dynamic (resampled each epoch)",
                              defaults.binarize.rawValue))
    var binarize: Binarization?

    public init() {}

    public func apply(to c: inout Config) {
      if let data { c.data = data }
      if let hidden { c.hidden = hidden }
      if let binarize { c.binarize = binarize }
    }
  }
}
