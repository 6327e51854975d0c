"""Single-image 3D car reconstruction through the differentiable renderer (docs/reconstruct.md):
`train.run(ReconstructTrainConfig)` and `image.run(ReconstructImageConfig)`."""
