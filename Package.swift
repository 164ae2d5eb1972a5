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
    .target(name: "CKernels", path: "Sources/CKernels",
            cSettings: [.unsafeFlags(["-O3", "-ffp-contract=fast", "-fno-math-errno"])]),

    // MARK: - 2–6. Numerics
    .target(name: "ElboTensor", dependencies: ["COpenBLAS", "CKernels"], swiftSettings: fast),
    .target(name: "ElboAutograd", dependencies: ["ElboTensor", "CKernels"], swiftSettings: fast),
    .target(name: "ElboNN", dependencies: ["ElboAutograd"], swiftSettings: fast),
    .target(name: "ElboProbability", dependencies: ["ElboNN"], swiftSettings: fast),
    .target(name: "ElboModels", dependencies: ["ElboProbability"], swiftSettings: fast),

    // MARK: - 7–9. Data, communication, checkpoints
    .target(name: "ElboData", dependencies: ["CZlib", "ElboTensor"], swiftSettings: fast),
    .target(name: "ElboDistributed", dependencies: ["CMPI"]),
    .target(name: "ElboCheckpoint", dependencies: ["CHDF5", "CMPI", "ElboDistributed"],
            exclude: ["LAYOUT.md"]),

    // MARK: - 10–11. Run outputs (plots, PNG grids, report), training loop and the command
    .target(name: "ElboReport", dependencies: ["CZlib"]),
    .target(name: "ElboTrain",
            dependencies: ["ElboModels", "ElboData", "ElboDistributed", "ElboCheckpoint",
                           "ElboReport"],
            swiftSettings: fast),
    .executableTarget(name: "elbo",
                      dependencies: ["ElboTrain",
                                     .product(name: "ArgumentParser", package: "swift-argument-parser")]),

    // MARK: - Tests (mirror Sources; one shared support target)
    .target(name: "ElboTestSupport", dependencies: ["ElboAutograd", "CZlib"],
            path: "Tests/ElboTestSupport"),
    .testTarget(name: "ElboTensorTests", dependencies: ["ElboTestSupport", "ElboTensor", "CKernels"]),
    .testTarget(name: "ElboAutogradTests",
                dependencies: ["ElboTestSupport", "ElboNN", "ElboProbability"]),
    .testTarget(name: "ElboModelsTests", dependencies: ["ElboTestSupport", "ElboModels"]),
    .testTarget(name: "ElboDataTests", dependencies: ["ElboData"]),
    .testTarget(name: "ElboDistributedTests",
                dependencies: ["ElboDistributed", "ElboCheckpoint"]),
    .testTarget(name: "ElboTrainTests",
                dependencies: ["ElboTestSupport", "ElboTrain", "ElboReport", "ElboData", "ElboModels"]),
    .testTarget(name: "ElboReportTests", dependencies: ["ElboTestSupport", "ElboReport", "CZlib"]),
  ]
)
