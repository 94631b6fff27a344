"""The calibrated score scale that ties networks, merging, picking and suggestions together."""

#: The annotated level of a calibrated score map. Each network's output is divided by its mean over
#: the voxels the annotator painted (Chen et al. 2017, Online Methods; or, with
#: ``calibrate(method="dice")``, by the level whose calls best reproduce the painted masks), so 1.0
#: means "as strong as what was annotated", whatever the feature; merging, picking, seeding and
#: tile suggestions use it as their default threshold, which makes the features' maps comparable.
THRESHOLD = 1.0
