"""Annotations in and out (docs/annotate.md): the `annotate` stage.

labels.py (allowed names) -> raster.py (shapes <-> masks) -> labelme.py / coco.py / pngmask.py
(readers into labeled.LabeledImage) -> export.py (samples for an annotator) and importer.py
(labels + exported latents -> AnnotationSet); select.py (which samples to label), invert.py
(HandsOff: real labeled images -> W+), simulate.py (a segmenter as a LabelMe annotator).
"""
