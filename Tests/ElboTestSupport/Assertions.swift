import XCTest

/// The largest violation of |a − b| ≤ atol + rtol·|b| over two arrays, with its index.
public struct CloseReport: CustomStringConvertible {
  public let worstIndex: Int
  public let worstDifference: Double
  /// (|a − b| − (atol + rtol·|b|)) at the worst element: > 0 means the check failed.
  public let worstExcess: Double
  public let first: ([Double], [Double])

  public var passed: Bool { worstExcess <= 0 }

  public var description: String {
    let a = first.0.map { String(format: "%.6g", $0) }.joined(separator: ", ")
    let b = first.1.map { String(format: "%.6g", $0) }.joined(separator: ", ")
    return "worst |a − b| = \(String(format: "%.3g", worstDifference)) at index \(worstIndex)"
      + "\n  a[0...] = [\(a)]\n  b[0...] = [\(b)]"
  }
}

/// Compares element by element: |a − b| ≤ atol + rtol·|b| (b is the reference).
public func compareClose(_ a: [Double], _ b: [Double], atol: Double, rtol: Double) -> CloseReport {
  precondition(a.count == b.count, "compareClose: \(a.count) vs \(b.count) elements")
  var worst = 0, worstDiff = 0.0, worstExcess = -Double.infinity
  for i in a.indices {
    let diff = abs(a[i] - b[i])
    // NaN anywhere is a failure.
    let excess = diff.isNaN ? .infinity : diff - (atol + rtol * abs(b[i]))
    if excess > worstExcess { worst = i; worstDiff = diff; worstExcess = excess }
  }
  if a.isEmpty { worstExcess = 0 }
  return CloseReport(worstIndex: worst, worstDifference: worstDiff, worstExcess: worstExcess,
                     first: (Array(a.prefix(6)), Array(b.prefix(6))))
}

/// Asserts |a − b| ≤ atol + rtol·|b| elementwise (b is the reference); on failure prints the first
/// values and the worst difference.
public func assertClose(_ a: [Float], _ b: [Float], atol: Float, rtol: Float = 0,
                        _ message: String = "", file: StaticString = #filePath,
                        line: UInt = #line) {
  assertClose(a.map(Double.init), b.map(Double.init), atol: Double(atol), rtol: Double(rtol),
              message, file: file, line: line)
}

/// Double version of `assertClose`.
public func assertClose(_ a: [Double], _ b: [Double], atol: Double, rtol: Double = 0,
                        _ message: String = "", file: StaticString = #filePath,
                        line: UInt = #line) {
  guard a.count == b.count else {
    XCTFail("\(message) sizes differ: \(a.count) vs \(b.count)", file: file, line: line)
    return
  }
  let r = compareClose(a, b, atol: atol, rtol: rtol)
  if !r.passed {
    XCTFail("\(message) not close (atol \(atol), rtol \(rtol)): \(r)", file: file, line: line)
  }
}
