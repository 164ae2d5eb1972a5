import ElboCheckpoint
import ElboModels

/// A checkpoint's tensors by name, copied into live buffers with shape checks — shared by
/// resume (parameters and optimizer state) and evaluation (parameters only).
struct StoredTensors {
  private var byName: [String: CheckpointTensor] = [:]

  init(_ state: CheckpointState) {
    for t in state.tensors { byName[t.name] = t }
  }

  /// Copies tensor `name` (which must have `shape`) into `dst`.
  func copy(_ name: String, into dst: UnsafeMutablePointer<Float>, shape: [Int]) throws {
    guard let t = byName[name] else {
      throw ElboError("checkpoint lacks '\(name)': it was written by a different model or "
        + "configuration")
    }
    guard t.shape == shape, t.data.count == Tensor.elementCount(shape) else {
      throw ElboError("checkpoint tensor '\(name)' has shape \(t.shape), this model needs "
        + "\(shape) (different --latent/--hidden?)")
    }
    t.data.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: t.data.count) }
  }

  /// Loads every parameter of `store` from `params/<name>`.
  func restoreParameters(of store: ParameterStore) throws {
    for (i, spec) in store.specs.enumerated() {
      try copy("params/\(spec.name)", into: store.value(i).pointer, shape: spec.shape)
    }
  }
}
