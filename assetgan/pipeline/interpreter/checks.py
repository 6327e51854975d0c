"""Does this interpreter or annotation set belong to this generator?

An interpreter reads the feature maps of one generator, and an annotation set's latents only
mean something to the generator that made them, so both record that generator's file SHA-256
(core.hashing.file_sha256): an interpreter in `InterpreterConfig.generator_sha256`, an annotation
set per sample in `generator_sha256`. `check_generator_match` is the one check every stage that
pairs them runs (interpreter train / eval, annotate select, dataset generate).
"""

from __future__ import annotations

from pathlib import Path

from assetgan.core.errors import AssetganError
from assetgan.pipeline.annotations import AnnotationSet
from assetgan.pipeline.interpreter.model import Interpreter


def check_generator_match(
    subject: Interpreter | AnnotationSet,  # an interpreter, or an annotation set
    generator_sha256: str,  # file_sha256 of the generator checkpoint it is used with
    where: str | Path,  # the interpreter checkpoint or annotation set folder (for messages)
    generator_path: str | Path = "the given generator",  # the generator checkpoint (messages)
) -> None:
    """AssetganError (one line: both files, both hashes, what to pass) unless `subject` was made
    with the generator whose checkpoint hashes to `generator_sha256`."""
    if isinstance(subject, Interpreter):
        recorded = subject.config.generator_sha256
        if recorded != generator_sha256:
            raise AssetganError(
                f"{where}: this interpreter was trained on generator sha256 {recorded[:12]}..., "
                f"but {generator_path} has {generator_sha256[:12]}...; pass the generator it "
                "was trained on"
            )
        return
    others = [s for s in subject.samples if s.generator_sha256 != generator_sha256]
    if others:
        raise AssetganError(
            f"{where}: latents were made with generator sha256 "
            f"{others[0].generator_sha256[:12]}..., but {generator_path} has "
            f"{generator_sha256[:12]}...; pass the generator checkpoint the set was annotated "
            f"on (annotations.json records its path: {others[0].generator_path})"
        )
