// swift-tools-version:5.9
// Elbo — distributed data-parallel trainer for variational models.
// Targets follow the layers of DESIGN.md; dependencies point one way (down).
import PackageDescription

// Hot loops (tensor kernels, optimizers) must be optimised even in debug test builds,
// otherwise the finite-difference and training tests take minutes instead of seconds.
let fast: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]

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
    .target(name: "CKernels", path: "Sources/CKernels",
            cSettings: [.unsafeFlags(["-O3", "-ffp-contract=fast", "-fno-math-errno"])]),

    // MARK: - 2–6. Numerics
    .target(name: "ElboTensor", dependencies: ["COpenBLAS", "CKernels"], swiftSettings: fast),
    .target(name: "ElboAutograd", dependencies: ["ElboTensor", "CKernels"], swiftSettings: fast),
    .target(name: "ElboNN", dependencies: ["ElboAutograd"], swiftSettings: fast),
    .target(name: "ElboProbability", dependencies: ["ElboNN"], swiftSettings: fast),
    .target(name: "ElboModels", dependencies: ["ElboProbability", "CKernels"], swiftSettings: fast),

    // MARK: - 7–9. Data, communication, checkpoints
    .target(name: "ElboData", dependencies: ["CZlib", "ElboTensor"], swiftSettings: fast),
    .target(name: "ElboDistributed", dependencies: ["CMPI"]),
    .target(name: "ElboCheckpoint", dependencies: ["CHDF5", "CMPI", "ElboDistributed"],
            exclude: ["LAYOUT.md"]),

    // MARK: - 10–11. Run outputs (plots, PNG grids, report), the trainer, the command line
    .target(name: "ElboReport", dependencies: ["CZlib"]),
    // The trainer: the Experiment protocol (a model as a plug-in), the one step, the loop,
    // run directories, configs. It names no model.
    .target(name: "ElboTrain",
            dependencies: ["ElboModels", "ElboData", "ElboDistributed", "ElboCheckpoint",
                           "ElboReport", .product(name: "Yams", package: "Yams")],
            swiftSettings: fast),
    // The command line, generated from a list of models.
    .target(name: "ElboCLI",
            dependencies: ["ElboTrain",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    // The built-in models as experiments: data, evaluation, pictures, flags, benchmarks; one
    // folder each, and the registry.
    .target(name: "ElboExperiments",
            dependencies: ["ElboTrain", "ElboCLI", "ElboData", "ElboReport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fast),
    .target(name: "ElboKit",
            dependencies: ["ElboCLI", "ElboExperiments", "ElboTrain", "ElboReport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    .executableTarget(name: "elbo", dependencies: ["ElboCLI", "ElboExperiments"]),

    // MARK: - Tests (mirror Sources; one shared support target)
    .target(name: "ElboTestSupport", dependencies: ["ElboAutograd", "CZlib"],
            path: "Tests/ElboTestSupport"),
    .testTarget(name: "ElboTensorTests", dependencies: ["ElboTestSupport", "ElboTensor", "CKernels"]),
    .testTarget(name: "ElboAutogradTests",
                dependencies: ["ElboTestSupport", "ElboNN", "ElboProbability", "ElboModels"]),
    .testTarget(name: "ElboModelsTests", dependencies: ["ElboTestSupport", "ElboModels"]),
    .testTarget(name: "ElboDataTests", dependencies: ["ElboData"]),
    .testTarget(name: "ElboDistributedTests",
                dependencies: ["ElboDistributed", "ElboCheckpoint"]),
    .testTarget(name: "ElboTrainTests",
                dependencies: ["ElboTestSupport", "ElboTrain", "ElboReport", "ElboData", "ElboModels",
                               "ElboExperiments", "ElboCheckpoint", "ElboDistributed"]),
    .testTarget(name: "ElboExperimentsTests",
                dependencies: ["ElboTestSupport", "ElboExperiments", "ElboTrain", "ElboReport",
                               "ElboData", "ElboModels"]),
    .testTarget(name: "ElboReportTests", dependencies: ["ElboTestSupport", "ElboReport", "CZlib"]),
  ]
)
