// swift-tools-version:5.9
// An Elbo model of one's own: probabilistic PCA as a VAE, trained by Elbo's trainer and command
// line (`elbo-example train ppca`, `mpirun -np 2 elbo-example train ppca`, eval, sample, …).
import PackageDescription

let package = Package(
  name: "ElboExamplePPCA",
  platforms: [.macOS(.v13)],
  dependencies: [
    // Elbo by path (this repository). The name is needed: a path dependency's identity is its
    // directory's name, which is whatever the checkout is called.
    .package(name: "Elbo", path: "../.."),
  ],
  targets: [
    .executableTarget(name: "elbo-example",
                      dependencies: [.product(name: "ElboKit", package: "Elbo")],
                      path: "Sources/elbo-example"),
  ]
)
