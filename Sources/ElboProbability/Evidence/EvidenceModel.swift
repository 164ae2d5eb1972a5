/// One observation's evidence problem: its joint log p(x, ·) and the model's own approximate
/// posterior q(z|x) (a VAE's encoder), which serves as the importance-sampling proposal and as
/// the Laplace expansion's starting point.
public struct EvidenceProblem {
  public var joint: any LatentJoint
  public var posterior: DiagonalGaussian

  public init(joint: any LatentJoint, posterior: DiagonalGaussian) {
    self.joint = joint
    self.posterior = posterior
  }
}

/// A trained latent-variable model the evidence estimators can be run on (`elbo evidence RUN`):
/// it hands out the problems of its first test observations. Estimators that need a joint
/// quadratic in z (mean-field fixed points, the closed-form series) do not apply to it.
public protocol EvidenceModel {
  /// The first `count` test observations' problems (fewer if the test set is smaller).
  func evidenceProblems(first count: Int) throws -> [EvidenceProblem]
}
