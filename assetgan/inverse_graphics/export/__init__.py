"""The export stage: part-labelled cars -> rigged, animatable glTF assets and a browser viewer.

car.py (`assetgan export CAR --out car.glb`) and viewer.py (`assetgan export view`); the input
side (sources.py) turns every input into the neutral render.asset.CarAsset. docs/export.md.
"""
