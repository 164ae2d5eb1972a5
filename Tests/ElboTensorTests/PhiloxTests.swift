import ElboTensor
import Foundation
import XCTest

final class PhiloxTests: XCTestCase {
  // MARK: - Known answers (Random123 kat_vectors, philox4x32 with 10 rounds)

  func assertBlock(key: (UInt32, UInt32), counter: (UInt32, UInt32, UInt32, UInt32),
                   _ expected: [UInt32], file: StaticString = #filePath, line: UInt = #line) {
    let b = Philox4x32(key: key).block(counter)
    XCTAssertEqual([b.0, b.1, b.2, b.3], expected, file: file, line: line)
  }

  func testKnownAnswerZeroCounterZeroKey() {
    assertBlock(key: (0, 0), counter: (0, 0, 0, 0),
                [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
  }

  func testKnownAnswerAllOnes() {
    assertBlock(key: (0xffff_ffff, 0xffff_ffff),
                counter: (0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff),
                [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
  }

  func testKnownAnswerPiDigits() {
    assertBlock(key: (0xa409_3822, 0x299f_31d0),
                counter: (0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344),
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
  }

  func testSeedSplitsIntoLowAndHighKeyWords() {
    let p = Philox4x32(seed: 0x299f_31d0_a409_3822)
    XCTAssertEqual(p.key.0, 0xa409_3822)
    XCTAssertEqual(p.key.1, 0x299f_31d0)
  }

  // MARK: - Addresses

  func words(_ a: NoiseAddress, _ n: Int = 16) -> [UInt32] {
    var s = RandomStream(a)
    return (0..<n).map { _ in s.nextWord() }
  }

  func testSameAddressGivesSameNumbers() {
    let a = NoiseAddress(seed: 5, purpose: .latentNoise, time: 123_456_789_012, item: 77)
    XCTAssertEqual(words(a), words(a))
    var s1 = RandomStream(a), s2 = RandomStream(a)
    let n1 = Tensor(zeros: [13]), n2 = Tensor(zeros: [13])
    s1.fillNormal(n1.buffer); s2.fillNormal(n2.buffer)
    XCTAssertEqual(n1.array, n2.array)
  }

  func testEveryAddressComponentChangesTheNumbers() {
    let base = NoiseAddress(seed: 5, purpose: .latentNoise, time: 9, item: 3)
    var variants: [NoiseAddress] = []
    var a = base; a.seed = 6; variants.append(a)
    a = base; a.seed = 5 | (1 << 40); variants.append(a)   // high key word
    a = base; a.purpose = .dropout; variants.append(a)
    a = base; a.time = 10; variants.append(a)
    a = base; a.time = 9 | (1 << 40); variants.append(a)   // high time bits
    a = base; a.item = 4; variants.append(a)
    let ref = words(base)
    for v in variants { XCTAssertNotEqual(words(v), ref, "\(v)") }
  }

  func testStartBlockResumesTheStream() {
    let a = NoiseAddress(seed: 1, purpose: .shuffle)
    let all = words(a, 12)
    var s = RandomStream(a, startBlock: 2)
    XCTAssertEqual((0..<4).map { _ in s.nextWord() }, Array(all[8..<12]))
    XCTAssertEqual(s.block, 3)
  }

  func testStreamCounterLayout() {
    // Counter = (block, item, time low, time high 16 | purpose << 16), key = seed.
    let a = NoiseAddress(seed: 0x1_0000_0002, purpose: .evaluation, time: 0x0003_0000_0004,
                         item: 9)
    var s = RandomStream(a, startBlock: 7)
    let b = s.nextBlock()
    let e = Philox4x32(key: (2, 1)).block((7, 9, 4, 3 | (5 << 16)))
    XCTAssertEqual([b.0, b.1, b.2, b.3], [e.0, e.1, e.2, e.3])
  }

  // MARK: - Distributions

  func testUniformsAreInUnitIntervalWithMeanOneHalf() {
    var s = RandomStream(NoiseAddress(seed: 2, purpose: .benchmark))
    let n = 100_000
    let u = (0..<n).map { _ in Double(s.uniform()) }
    XCTAssertTrue(u.allSatisfy { $0 >= 0 && $0 < 1 })
    // SE of the mean of U(0,1): 1/√(12n) ≈ 9.1e-4; 5 SE.
    XCTAssertEqual(u.reduce(0, +) / Double(n), 0.5, accuracy: 5 / (12 * Double(n)).squareRoot())
  }

  func testNormalMomentsAndKolmogorovSmirnov() {
    var s = RandomStream(NoiseAddress(seed: 3, purpose: .benchmark))
    let n = 100_000
    let t = Tensor(zeros: [n])
    s.fillNormal(t.buffer)
    let z = t.array.map(Double.init)
    let mean = z.reduce(0, +) / Double(n)
    func moment(_ k: Double) -> Double { z.reduce(0) { $0 + pow($1 - mean, k) } / Double(n) }
    let variance = moment(2)
    let skew = moment(3) / pow(variance, 1.5), kurt = moment(4) / (variance * variance) - 3
    // Standard errors for n normal draws: mean 1/√n, variance √(2/n), skewness √(6/n),
    // excess kurtosis √(24/n). Each within 5 SE.
    let rn = Double(n).squareRoot()
    XCTAssertEqual(mean, 0, accuracy: 5 / rn)
    XCTAssertEqual(variance, 1, accuracy: 5 * 2.0.squareRoot() / rn)
    XCTAssertEqual(skew, 0, accuracy: 5 * 6.0.squareRoot() / rn)
    XCTAssertEqual(kurt, 0, accuracy: 5 * 24.0.squareRoot() / rn)
    // Kolmogorov–Smirnov: D_n < 1.95/√n rejects a true N(0,1) with probability 0.001.
    let sorted = z.sorted()
    var d = 0.0
    for (i, x) in sorted.enumerated() {
      let cdf = 0.5 * erfc(-x / 2.0.squareRoot())
      d = max(d, abs(cdf - Double(i) / Double(n)), abs(Double(i + 1) / Double(n) - cdf))
    }
    XCTAssertLessThan(d, 1.95 / rn, "KS statistic")
  }

  func testFillNormalOfOddLengthsIsAPrefixOfTheBlockStream() {
    let a = NoiseAddress(seed: 4, purpose: .latentNoise)
    var s1 = RandomStream(a), s2 = RandomStream(a)
    let t7 = Tensor(zeros: [7]), t8 = Tensor(zeros: [8])
    s1.fillNormal(t7.buffer); s2.fillNormal(t8.buffer)
    XCTAssertEqual(t7.array, Array(t8.array.prefix(7)))
    XCTAssertTrue(t7.array.allSatisfy { $0.isFinite })
  }

  /// Pearson χ² of counts against equal expected frequencies.
  func chiSquare(_ counts: [Int]) -> Double {
    let n = Double(counts.reduce(0, +)), e = n / Double(counts.count)
    return counts.reduce(0) { $0 + (Double($1) - e) * (Double($1) - e) / e }
  }

  func testIntegerBelowTenIsUniform() {
    var s = RandomStream(NoiseAddress(seed: 5, purpose: .shuffle))
    var counts = [Int](repeating: 0, count: 10)
    for _ in 0..<100_000 { counts[s.integer(below: 10)] += 1 }
    // χ² with 9 degrees of freedom exceeds 27.88 with probability 0.001.
    XCTAssertLessThan(chiSquare(counts), 27.88, "\(counts)")
  }

  func testIntegerBelowLargeBoundHasNoModuloBias() {
    // n = 3·2³⁰: a plain `word % n` would put half the mass in the first third.
    let n = 3 << 30
    var s = RandomStream(NoiseAddress(seed: 6, purpose: .shuffle))
    var counts = [0, 0, 0]
    for _ in 0..<30_000 {
      let v = s.integer(below: n)
      XCTAssertTrue(v >= 0 && v < n)
      counts[v / (1 << 30)] += 1
    }
    // χ² with 2 degrees of freedom exceeds 13.82 with probability 0.001.
    XCTAssertLessThan(chiSquare(counts), 13.82, "\(counts)")
  }

  func testIntegerBelowOneIsZero() {
    var s = RandomStream(NoiseAddress(seed: 7, purpose: .shuffle))
    XCTAssertTrue((0..<100).allSatisfy { _ in s.integer(below: 1) == 0 })
  }
}
