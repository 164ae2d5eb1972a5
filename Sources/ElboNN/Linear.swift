/// A fully connected layer y = x·W + b.
///
/// Parameters: `<name>.weight` [in, out], `<name>.bias` [out]. Initialisation follows PyTorch's
/// `nn.Linear` default (Kaiming-uniform with a = √5, i.e. W, b ~ U(−1/√in, 1/√in)), so that
/// results can be compared with the PyTorch anchors in ANCHORS.md.
public struct Linear {
  public let weight: Int
  public let bias: Int
  public let inputs: Int
  public let outputs: Int

  public init(_ store: ParameterStore, _ name: String, _ inputs: Int, _ outputs: Int) {
    let bound = 1 / Float(inputs).squareRoot()
    weight = store.declare("\(name).weight", [inputs, outputs], .uniform(bound: bound))
    bias = store.declare("\(name).bias", [outputs], .uniform(bound: bound))
    self.inputs = inputs
    self.outputs = outputs
  }

  /// x [R, in] → [R, out].
  public func callAsFunction(_ x: Variable, _ store: ParameterStore) -> Variable {
    linear(x, store.variable(weight, on: x.tape), store.variable(bias, on: x.tape))
  }
}

/// Elementwise non-linearities a model can be configured with.
public enum Activation: String, Codable, Sendable, CaseIterable {
  case relu, tanh, elu, softplus, sigmoid

  public func callAsFunction(_ x: Variable) -> Variable {
    switch self {
    case .relu: return x.relu()
    case .tanh: return x.tanh()
    case .elu: return x.elu()
    case .softplus: return x.softplus()
    case .sigmoid: return x.sigmoid()
    }
  }
}

/// A stack of `Linear` layers with an activation between them (none after the last).
public struct MLP {
  public let layers: [Linear]
  public let activation: Activation

  /// sizes = [in, h1, …, out].
  public init(_ store: ParameterStore, _ name: String, sizes: [Int], activation: Activation) {
    precondition(sizes.count >= 2, "an MLP needs at least input and output sizes")
    layers = (0..<(sizes.count - 1)).map { i in
      Linear(store, "\(name).fc\(i + 1)", sizes[i], sizes[i + 1])
    }
    self.activation = activation
  }

  public func callAsFunction(_ x: Variable, _ store: ParameterStore) -> Variable {
    var h = x
    for (i, layer) in layers.enumerated() {
      h = layer(h, store)
      if i < layers.count - 1 { h = activation(h) }
    }
    return h
  }
}
