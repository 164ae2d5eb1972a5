/// A dense, row-major Float32 tensor: a view (offset, shape) into a `Storage`.
///
/// Tensors are always contiguous; a "view" only shifts the offset or changes the shape, which is
/// how layers see their slice of the flat parameter buffer. Copying a `Tensor` copies the view,
/// not the data (the storage is shared), like a pointer with a shape.
public struct Tensor: @unchecked Sendable {
  public let storage: Storage
  public let offset: Int
  public let shape: [Int]
  /// Number of elements (product of `shape`).
  public let count: Int

  /// A zero-filled tensor with its own storage.
  public init(zeros shape: [Int]) {
    let n = Tensor.elementCount(shape)
    self.init(storage: Storage(capacity: n), offset: 0, shape: shape)
  }

  /// A tensor holding a copy of `values` with the given shape.
  public init(_ values: [Float], shape: [Int]) {
    precondition(values.count == Tensor.elementCount(shape),
                 "\(values.count) values do not fill shape \(shape)")
    self.init(zeros: shape)
    values.withUnsafeBufferPointer { src in
      if let b = src.baseAddress { pointer.update(from: b, count: values.count) }
    }
  }

  /// A view of `storage` starting at `offset`.
  public init(storage: Storage, offset: Int, shape: [Int]) {
    let n = Tensor.elementCount(shape)
    precondition(offset >= 0 && offset + n <= storage.capacity, "view out of bounds")
    self.storage = storage
    self.offset = offset
    self.shape = shape
    self.count = n
  }

  @inlinable public static func elementCount(_ shape: [Int]) -> Int {
    var n = 1
    for d in shape { precondition(d >= 0, "negative dimension in \(shape)"); n *= d }
    return n
  }

  /// Pointer to the first element (valid while the storage lives).
  @inlinable public var pointer: UnsafeMutablePointer<Float> { storage.base + offset }
  /// The elements as a buffer.
  @inlinable public var buffer: UnsafeMutableBufferPointer<Float> {
    UnsafeMutableBufferPointer(start: pointer, count: count)
  }
  public var rank: Int { shape.count }
  /// Rows when seen as a matrix: all leading dimensions folded into one.
  public var rows: Int { shape.count <= 1 ? 1 : count / (shape.last ?? 1) }
  /// Columns when seen as a matrix: the last dimension.
  public var cols: Int { shape.last ?? 1 }

  /// The same elements seen with another shape of equal size (no copy).
  public func reshaped(_ newShape: [Int]) -> Tensor {
    precondition(Tensor.elementCount(newShape) == count,
                 "cannot reshape \(shape) to \(newShape)")
    return Tensor(storage: storage, offset: offset, shape: newShape)
  }

  /// The elements as an Array (a copy).
  public var array: [Float] { Array(buffer) }
  /// The single element of a one-element tensor.
  public var scalar: Float {
    precondition(count == 1, "scalar of a tensor with shape \(shape)")
    return pointer[0]
  }

  public subscript(i: Int) -> Float {
    get { pointer[i] }
    nonmutating set { pointer[i] = newValue }
  }

  // MARK: - Whole-buffer helpers

  public func fill(_ v: Float) {
    if v == 0 { pointer.update(repeating: 0, count: count) } else {
      pointer.update(repeating: v, count: count)
    }
  }
  public func copy(from other: Tensor) {
    precondition(other.count == count, "copy between sizes \(other.count) and \(count)")
    pointer.update(from: other.pointer, count: count)
  }
  /// A deep copy with its own storage.
  public func clone() -> Tensor {
    let t = Tensor(zeros: shape)
    t.copy(from: self)
    return t
  }
}
