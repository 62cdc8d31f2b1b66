"""What ImageNet's network sees: EfficientNet-Lite0's pooled features of any images
(`imagenet`), and the near-duplicates they reveal where the pixels hide them (`copies`),
a finder the data layer runs beside its own search."""
