@_exported import ElboTensor

/// A reverse-mode autodiff tape, rebuilt every step (define-by-run, like micrograd and PyTorch).
///
/// Each op computes its forward value immediately and records one closure — its backward — that
/// reads the output's gradient and *accumulates* into its inputs' gradients. `backward(loss)` runs
/// the closures newest-first.
///
/// Memory: every tensor an op makes comes from the tape's arena, a list of storages handed out in
/// allocation order and handed out again, in the same order, after `reset()`. A training step
/// builds the same graph every time, so from the second step on no tensor storage is allocated.
/// Consequence: values read from a tape are valid until the next `reset()`.
public final class Tape {
  /// When false (evaluation), ops record nothing and no gradients exist.
  public let isRecording: Bool
  /// (output, its backward), in the order the ops ran.
  private var backwards: [(output: Variable, run: () -> Void)] = []
  /// Parameter gradients in creation order, each with `mark` = the number of ops recorded when
  /// its leaf was made. Only ops recorded later can read the leaf, so once backward has run every
  /// op from `mark` on, nothing adds to that gradient again: it is final (see `backward`).
  private var leaves: [(mark: Int, grad: Tensor)] = []
  private var arena: [Storage] = []
  private var arenaNext = 0

  public init(recording: Bool = true) {
    self.isRecording = recording
    backwards.reserveCapacity(256)
  }

  /// Forgets the recorded graph and recycles every arena tensor.
  public func reset() {
    backwards.removeAll(keepingCapacity: true)
    leaves.removeAll(keepingCapacity: true)
    arenaNext = 0
  }

  /// Number of storages the arena holds (for tests of buffer reuse).
  public var arenaSize: Int { arena.count }

  /// A tensor from the arena. Contents are undefined unless `zeroed`.
  public func tensor(_ shape: [Int], zeroed: Bool = false) -> Tensor {
    let n = Tensor.elementCount(shape)
    if arenaNext == arena.count {
      arena.append(Storage(capacity: n))
    } else if arena[arenaNext].capacity < n {
      arena[arenaNext] = Storage(capacity: n)
    }
    let t = Tensor(storage: arena[arenaNext], offset: 0, shape: shape)
    arenaNext += 1
    if zeroed { t.fill(0) }
    return t
  }

  /// A value that needs no gradient (data, noise).
  public func constant(_ value: Tensor) -> Variable {
    Variable(value: value, tape: self, requiresGrad: false)
  }

  /// A leaf whose gradient accumulates into `grad` (a view into the flat gradient buffer).
  public func parameter(_ value: Tensor, grad: Tensor) -> Variable {
    precondition(value.shape == grad.shape, "parameter and gradient shapes differ")
    let v = Variable(value: value, tape: self, requiresGrad: isRecording)
    if isRecording {
      v.setGrad(grad)
      // A tensor made a leaf twice keeps its first mark: the earliest op that can read it.
      let seen = leaves.contains { $0.grad.storage === grad.storage && $0.grad.offset == grad.offset }
      if !seen { leaves.append((backwards.count, grad)) }
    }
    return v
  }

  /// Records the backward of an op whose `output` requires a gradient.
  public func record(_ output: Variable, _ backward: @escaping () -> Void) {
    backwards.append((output, backward))
  }

  /// Runs backward from a scalar `loss`, seeding d loss = `seed` (default 1).
  ///
  /// `gradientFinal`, if given, is called once for every parameter gradient (the `grad` passed
  /// to ``parameter(_:grad:)``) as soon as backward can no longer add to it — the gradients of
  /// the last layers come first. A data-parallel trainer starts reducing them then, overlapped
  /// with the rest of backward. Every parameter is reported by the time `backward` returns.
  public func backward(_ loss: Variable, seed: Float = 1,
                       gradientFinal: ((Tensor) -> Void)? = nil) {
    precondition(isRecording, "backward on a tape that does not record")
    precondition(loss.value.count == 1, "backward needs a scalar loss, got \(loss.value.shape)")
    var pending = leaves.count  // leaves[..<pending] are not reported yet (marks ascend)
    func report(after op: Int) {
      guard let gradientFinal else { return }
      while pending > 0 && leaves[pending - 1].mark >= op {
        pending -= 1
        gradientFinal(leaves[pending].grad)
      }
    }
    if loss.requiresGrad {
      loss.grad[0] += seed
      // An op whose output never received a gradient is not on a path to the loss (e.g. a term
      // computed only for logging): its backward would only add zeros, so it is skipped.
      for op in backwards.indices.reversed() {
        report(after: op + 1)
        if backwards[op].output.hasGrad { backwards[op].run() }
      }
    }
    report(after: 0)
  }
}

/// A node of the graph: a value, and (if it requires one) a gradient of the same shape.
public final class Variable {
  public let value: Tensor
  public let requiresGrad: Bool
  public unowned let tape: Tape
  private var _grad: Tensor?

  init(value: Tensor, tape: Tape, requiresGrad: Bool) {
    self.value = value
    self.tape = tape
    self.requiresGrad = requiresGrad
  }

  /// ∂loss/∂self, allocated (zeroed) from the arena on first use.
  public var grad: Tensor {
    if let g = _grad { return g }
    let g = tape.tensor(value.shape, zeroed: true)
    _grad = g
    return g
  }
  func setGrad(_ g: Tensor) { _grad = g }
  /// Whether a gradient buffer exists (something accumulated into it, or it is a parameter).
  var hasGrad: Bool { _grad != nil }

  public var shape: [Int] { value.shape }
  public var count: Int { value.count }
  /// The value of a one-element variable.
  public var scalar: Float { value.scalar }
}

extension Tape {
  /// Output of an op over `inputs`: requires a gradient iff recording and any input does.
  public func output(_ shape: [Int], _ inputs: Variable...) -> Variable {
    let needs = isRecording && inputs.contains { $0.requiresGrad }
    return Variable(value: tensor(shape), tape: self, requiresGrad: needs)
  }
}
