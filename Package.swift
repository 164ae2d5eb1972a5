// swift-tools-version:5.9
// Elbo — distributed data-parallel trainer for variational models.
// Targets follow the layers of DESIGN.md; dependencies point one way (down).
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
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
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

    // MARK: - 2–6. Numerics
    .target(name: "ElboTensor", dependencies: ["COpenBLAS", "CKernels"]),
    .target(name: "ElboAutograd", dependencies: ["ElboTensor", "CKernels"]),
    .target(name: "ElboNN", dependencies: ["ElboAutograd"]),
    .target(name: "ElboProbability", dependencies: ["ElboNN"]),
    .target(name: "ElboModels", dependencies: ["ElboProbability"]),

    // MARK: - 7–9. Data, communication, checkpoints
    .target(name: "ElboData", dependencies: ["CZlib", "ElboTensor"]),
    .target(name: "ElboDistributed", dependencies: ["CMPI"]),
    .target(name: "ElboCheckpoint", dependencies: ["CHDF5", "CMPI", "ElboDistributed"],
            exclude: ["LAYOUT.md"]),

    // MARK: - 10–11. Run outputs (plots, PNG grids, report), training loop and the command
    .target(name: "ElboReport", dependencies: ["CZlib"]),
    .target(name: "ElboTrain",
            dependencies: ["ElboModels", "ElboData", "ElboDistributed", "ElboCheckpoint",
                           "ElboReport"]),
    .executableTarget(name: "elbo",
                      dependencies: ["ElboTrain",
                                     .product(name: "ArgumentParser", package: "swift-argument-parser")]),

    // MARK: - Tests (mirror Sources; one shared support target)
    .target(name: "ElboTestSupport", dependencies: ["ElboTensor", "ElboAutograd", "CZlib"],
            path: "Tests/ElboTestSupport"),
    .testTarget(name: "ElboTensorTests", dependencies: ["ElboTestSupport", "ElboTensor", "CKernels"]),
    // Every test target names each module it imports (a clean parallel build must not depend on
    // another target happening to be built first).
    .testTarget(name: "ElboAutogradTests",
                dependencies: ["ElboTestSupport", "ElboAutograd", "ElboNN", "ElboProbability",
                               "ElboModels"]),
    .testTarget(name: "ElboDataTests", dependencies: ["ElboData"]),
    .testTarget(name: "ElboDistributedTests",
                dependencies: ["ElboTestSupport", "ElboDistributed", "ElboCheckpoint"]),
    .testTarget(name: "ElboTrainTests",
                dependencies: ["ElboTestSupport", "ElboTrain", "ElboReport", "ElboData", "ElboModels",
                               "ElboTensor", "ElboAutograd", "ElboNN", "ElboProbability",
                               "ElboDistributed", "ElboCheckpoint"]),
    .testTarget(name: "ElboReportTests", dependencies: ["ElboTestSupport", "ElboReport", "CZlib"]),
  ]
)
