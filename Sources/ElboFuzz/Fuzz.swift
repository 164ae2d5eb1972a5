// libFuzzer harnesses for every reader of outside input (built only by launch/fuzz, with
// `-sanitize=fuzzer,address`). This file is the program: it hands libFuzzer's driver the
// callback below (SwiftPM gives an executable its own `main`, so libFuzzer's cannot be used).
// ELBO_FUZZ_TARGET picks the reader:
//
//   idx         IDX image and label files (Fashion-MNIST's format), uncompressed
//   gzip        the same through the gzip reader (.gz files)
//   mnist5k     the MNIST-5k CSV parser
//   config      a config file (YAML or JSON: Yams reads both) applied to every model's config
//   checkpoint  a checkpoint file read back (HDF5 + Elbo's layout checks)
//
// A reader may throw on any input — that is the one-line error users see — but it must never
// trap, hang or touch memory it does not own: libFuzzer reports those as crashes.
import ElboCheckpoint
import ElboData
import ElboExperiments
import ElboTrain
import Foundation

enum Target: String { case idx, gzip, mnist5k, config, checkpoint }

nonisolated(unsafe) let target: Target = {
  let name = ProcessInfo.processInfo.environment["ELBO_FUZZ_TARGET"] ?? ""
  guard let t = Target(rawValue: name) else {
    FileHandle.standardError.write(Data(
      "elbo-fuzz: set ELBO_FUZZ_TARGET to idx, gzip, mnist5k, config or checkpoint\n".utf8))
    exit(2)
  }
  return t
}()

/// Inputs go through a file, as users' do: in /dev/shm where there is one (fast).
nonisolated(unsafe) let scratch: String = {
  let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
  return dir + "/elbo-fuzz-\(getpid())"
}()

func write(_ bytes: UnsafeBufferPointer<UInt8>, suffix: String) -> String {
  let path = scratch + suffix
  _ = FileManager.default.createFile(atPath: path, contents: Data(buffer: bytes))
  return path
}

func applyToEveryModel(_ text: String) {
  func apply<E: Experiment>(_ type: E.Type) {
    var config = Session.defaultConfig(type)
    _ = try? config.apply(text: text, source: "fuzz.yaml")
    _ = try? config.config.validate()
    _ = try? config.options.validate()
  }
  apply(VAEExperiment.self)
  apply(NADEExperiment.self)
  apply(MADEExperiment.self)
  apply(BBBClassifierExperiment.self)
  apply(BBBRegressionExperiment.self)
  apply(Flow2DExperiment.self)
}

func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = UnsafeBufferPointer(start: data, count: size)
  switch target {
  case .idx:
    let path = write(bytes, suffix: "-idx")
    _ = try? readIDXImages(path)
    _ = try? readIDXLabels(path)
  case .gzip:
    let path = write(bytes, suffix: "-idx.gz")
    _ = try? readIDXImages(path)
    _ = try? gunzip(Array(bytes), path: "fuzz.gz")
  case .mnist5k:
    _ = try? parseMNIST5k(Array(bytes), path: "fuzz.csv")
  case .config:
    applyToEveryModel(String(decoding: bytes, as: UTF8.self))
  case .checkpoint:
    let path = write(bytes, suffix: "-ckpt.h5")
    _ = try? CheckpointStore.read(path: path)
  }
  return 0
}

/// libFuzzer's entry point for programs with a `main` of their own (LLVM ≥ 11).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
  _ argc: UnsafeMutablePointer<CInt>,
  _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
  _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

_ = target  // an unknown ELBO_FUZZ_TARGET stops here, before libFuzzer starts
var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
