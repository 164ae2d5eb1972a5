import ElboModels

/// `elbo evidence RUN`: the VAE's first test images (binarised as for `elbo eval`) as evidence
/// problems for importance sampling and Laplace.
extension VAEExperiment: EvidenceModel {
  public func evidenceProblems(first count: Int) throws -> [EvidenceProblem] {
    model.evidenceProblems(images: images.testBinary, count: min(count, images.test.count))
  }
}
