"""Explaining a run in pictures: feature maps, filters, Grad-CAM and probabilities for one
image (`pictures`), and the run's report page (`report`). The tensors come from
`convnet.network.inside` and `convnet.network.arithmetic`; `plots` draws them (matplotlib,
the ``plots`` extra)."""
