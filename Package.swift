// swift-tools-version:5.9
// Elbo — distributed data-parallel trainer for variational models.
// Targets follow the layers of DESIGN.md; dependencies point one way (down).
import Foundation
import PackageDescription

// No unsafeFlags anywhere: SwiftPM refuses them in a package taken as a versioned dependency, and
// -Ounchecked would drop bounds checks and preconditions. Speed comes from the release
// configuration (Swift -O keeps both checks; C at SwiftPM's release level), and the tests run
// from a release build with testing enabled (launch/test), so they are fast and checked.

let package = Package(
  name: "Elbo",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "elbo", targets: ["elbo"]),
    // Elbo as a library: models of one's own, trained by the same trainer and command line.
    .library(name: "ElboKit", targets: ["ElboKit"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
  ],
  targets: [
    // MARK: - 1. C shims (system libraries from Debian)
    .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                   providers: [.apt(["libopenmpi-dev"])]),
    .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                   providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5-openmpi",
                   providers: [.apt(["libhdf5-openmpi-dev"])]),
    .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                   providers: [.apt(["zlib1g-dev"])]),
    // Vectorised elementwise kernels (exp, log, tanh, softplus, …) in C: see CKernels/README.
    // Its FP contraction is set by a pragma in kernels.c, not by flags.
    .target(name: "CKernels", path: "Sources/CKernels"),
    // SIGTERM/SIGUSR1 handler and its sig_atomic_t flag (a signal handler cannot be Swift).
    .target(name: "CStopSignals", path: "Sources/CStopSignals"),

    // MARK: - 2–6. Numerics
    .target(name: "ElboTensor", dependencies: ["COpenBLAS", "CKernels"]),
    .target(name: "ElboAutograd", dependencies: ["ElboTensor", "CKernels"]),
    .target(name: "ElboNN", dependencies: ["ElboAutograd"]),
    .target(name: "ElboProbability", dependencies: ["ElboNN"]),
    .target(name: "ElboModels", dependencies: ["ElboProbability", "CKernels"]),

    // MARK: - 7–9. Data, communication, checkpoints
    // Collections of data sets are HDF5 files each rank reads its own part of (MPI-IO).
    .target(name: "ElboData",
            dependencies: ["CZlib", "ElboTensor", "CHDF5", "CMPI", "ElboDistributed"],
            exclude: ["Collections/LAYOUT.md"]),
    .target(name: "ElboDistributed", dependencies: ["CMPI"]),
    .target(name: "ElboCheckpoint", dependencies: ["CHDF5", "CMPI", "ElboDistributed"],
            exclude: ["LAYOUT.md"]),

    // MARK: - 10–11. Run outputs (plots, PNG grids, report), the trainer, the command line
    .target(name: "ElboReport", dependencies: ["CZlib"]),
    // The trainer: the Experiment protocol (a model as a plug-in), the one step, the loop,
    // run directories, configs. It names no model.
    .target(name: "ElboTrain",
            dependencies: ["ElboModels", "ElboData", "ElboDistributed", "ElboCheckpoint",
                           "ElboReport", "CStopSignals", .product(name: "Yams", package: "Yams")]),
    // The command line, generated from a list of models.
    .target(name: "ElboCLI",
            dependencies: ["ElboTrain", "ElboDistributed", "ElboData",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    // The built-in models as experiments: data, evaluation, pictures, flags, benchmarks; one
    // folder each, and the registry.
    .target(name: "ElboExperiments",
            dependencies: ["ElboTrain", "ElboCLI", "ElboData", "ElboReport", "ElboModels",
                           "ElboDistributed",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    .target(name: "ElboKit",
            dependencies: ["ElboCLI", "ElboExperiments", "ElboTrain", "ElboReport", "ElboData",
                           "ElboDistributed", "ElboModels",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    .executableTarget(name: "elbo", dependencies: ["ElboCLI", "ElboExperiments"]),

    // MARK: - Tests (mirror Sources; one shared support target)
    .target(name: "ElboTestSupport", dependencies: ["ElboTensor", "ElboAutograd", "CZlib"],
            path: "Tests/ElboTestSupport"),
    .testTarget(name: "ElboTensorTests", dependencies: ["ElboTestSupport", "ElboTensor", "CKernels"]),
    // Every test target names each module it imports (a clean parallel build must not depend on
    // another target happening to be built first).
    .testTarget(name: "ElboAutogradTests",
                dependencies: ["ElboTestSupport", "ElboAutograd", "ElboNN", "ElboProbability",
                               "ElboModels"]),
    .testTarget(name: "ElboModelsTests",
                dependencies: ["ElboTestSupport", "ElboModels", "ElboNN", "ElboAutograd",
                               "ElboTensor"]),
    .testTarget(name: "ElboDataTests",
                dependencies: ["ElboData", "ElboTestSupport", "ElboDistributed", "ElboTensor"]),
    .testTarget(name: "ElboDistributedTests",
                dependencies: ["ElboTestSupport", "ElboDistributed", "ElboCheckpoint"]),
    .testTarget(name: "ElboTrainTests",
                dependencies: ["ElboTestSupport", "ElboTrain", "ElboReport", "ElboData", "ElboModels",
                               "ElboTensor", "ElboAutograd", "ElboNN", "ElboProbability",
                               "ElboDistributed", "ElboCheckpoint", "ElboExperiments"]),
    .testTarget(name: "ElboExperimentsTests",
                dependencies: ["ElboTestSupport", "ElboExperiments", "ElboTrain", "ElboReport",
                               "ElboData", "ElboModels", "ElboTensor", "ElboAutograd",
                               "ElboDistributed"]),
    .testTarget(name: "ElboReportTests", dependencies: ["ElboTestSupport", "ElboReport", "CZlib"]),
  ]
)

// The libFuzzer harnesses (Sources/ElboFuzz) exist only in launch/fuzz's build: they have no
// `main` of their own (libFuzzer supplies it under -sanitize=fuzzer), so an ordinary build must
// not see them.
if ProcessInfo.processInfo.environment["ELBO_FUZZ"] == "1" {
  package.targets.append(
    .executableTarget(name: "elbo-fuzz", dependencies: ["ElboData", "ElboTrain", "ElboCheckpoint",
                                                        "ElboExperiments"],
                      path: "Sources/ElboFuzz"))
}
