/// The silent-divergence detector: are the replicated parameters the same on every rank?
extension Communicator {
  /// A cheap fingerprint of a float buffer: a bit-pattern hash and a `Double` sum.
  ///
  /// The hash is FNV-1a-like over the 32-bit patterns, so it catches any single-bit difference
  /// (and NaN payloads); the sum is only there to make a report readable.
  public static func checksum(_ values: UnsafeBufferPointer<Float>) -> (hash: UInt64, sum: Double) {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    var sum = 0.0
    for v in values {
      h = (h ^ UInt64(v.bitPattern)) &* 0x0000_0100_0000_01b3
      sum += Double(v)
    }
    return (h, sum)
  }

  /// Throws a ``DistributedError`` on every rank, naming the ranks whose `params` differ from
  /// rank 0's, if the ranks' replicated parameters are not bitwise identical.
  ///
  /// One `MPI_Allgather` of 3 words; the check itself is a pass over the buffer.
  public func parameterChecksumsAgree(_ params: UnsafeBufferPointer<Float>,
                                      name: String = "parameter checksum") throws
  {
    let (hash, sum) = Communicator.checksum(params)
    let mine: [UInt64] = [hash, sum.bitPattern, UInt64(params.count)]
    let all = try allgather(mine, name: name)
    guard all.count == 3 * size else { return }
    var bad: [Int] = []
    for r in 1..<max(1, size) where all[3 * r] != all[0] || all[3 * r + 2] != all[2] {
      bad.append(r)
    }
    if bad.isEmpty { return }
    let detail = bad.prefix(8).map { r in
      "rank \(r): count \(all[3 * r + 2]) sum \(Double(bitPattern: all[3 * r + 1]))"
    }.joined(separator: ", ")
    let names = bad.count == 1 ? "rank \(bad[0]) differs" : "ranks \(bad.map(String.init).joined(separator: ", ")) differ"
    throw DistributedError(
      rank: rank, size: size, collective: name,
      message: "replicated parameters have diverged: \(names) from rank 0 "
        + "(rank 0: count \(all[2]) sum \(Double(bitPattern: all[1])); \(detail))")
  }
}
