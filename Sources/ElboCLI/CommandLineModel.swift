import ArgumentParser
import ElboTrain

/// A model the command line can train: an ``Experiment`` with the flags that set its options.
///
/// The command line is generated from a list of these (``ElboCLI/main(models:)``): each gets
/// `elbo train <name>` and `elbo bench <name>` with its own flags and its own defaults, and
/// `elbo eval`, `elbo sample` and `elbo inspect` find it by the name in a checkpoint.
public protocol CommandLineModel: Experiment {
  /// The flags of `elbo train <name>` and `elbo bench <name>` that set this model's options.
  associatedtype Flags: ModelFlags where Flags.Config == Config
}

/// A model's flags: every one optional, so that a flag left out keeps the value of the config
/// file or the default (the help names the default).
public protocol ModelFlags: ParsableArguments {
  associatedtype Config
  /// Sets the options whose flags were given.
  func apply(to config: inout Config)
}

extension ElboCLI {
  // Loops rather than `map` over the existential metatypes: Swift 6.3's SILGen crashes on
  // `models.map(\.name)`-style closures over `any CommandLineModel.Type`.
  static var trainCommands: [ParsableCommand.Type] {
    var commands: [ParsableCommand.Type] = []
    for model in models { commands.append(trainCommand(model)) }
    return commands
  }

  static var benchCommands: [ParsableCommand.Type] {
    var commands: [ParsableCommand.Type] = []
    for model in models { commands.append(benchCommand(model)) }
    return commands
  }

  static func trainCommand<E: CommandLineModel>(_ type: E.Type) -> ParsableCommand.Type {
    TrainModel<E>.self
  }

  static func benchCommand<E: CommandLineModel>(_ type: E.Type) -> ParsableCommand.Type {
    BenchModel<E>.self
  }

  /// The models as experiment types (what `Session` looks checkpoints up in).
  static var experimentTypes: [any Experiment.Type] {
    var types: [any Experiment.Type] = []
    for model in models { types.append(model) }
    return types
  }
}

/// "… (default X)." for a flag's help, from the value the model or run defaults to.
public func withDefault(_ text: String, _ value: Any?) -> ArgumentHelp {
  guard let value else { return ArgumentHelp(text + ".") }
  return ArgumentHelp("\(text) (default \(value)).")
}
