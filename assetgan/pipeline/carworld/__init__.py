"""CarWorld: a procedural, part-labeled 3D car world rendered into labeled image splits.

params.py (CarParams, sampling) -> body.py + parts.py (geometry) -> model.py (build_car ->
CarModel) -> scene.py (cameras, lights, backgrounds) -> render.py (images + labels) ->
split.py (the split directory format) and generate.py (run(config) with workers and resume).
"""
