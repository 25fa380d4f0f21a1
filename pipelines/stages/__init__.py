"""The stages, in the order they run."""

from pipelines.stages.base import Stage, StageContext, StageResult, run_stage
from pipelines.stages.classifier import TrainClassifierStage
from pipelines.stages.dedup import DedupStage
from pipelines.stages.extract import ExtractStage
from pipelines.stages.langid import LangIdStage
from pipelines.stages.mix import MixStage
from pipelines.stages.quality import QualityStage
from pipelines.stages.tokenizer import TokenizeStage, TrainTokenizerStage

STAGE_CLASSES: dict[str, type[Stage]] = {
    "extract": ExtractStage,
    "langid": LangIdStage,
    "train-classifier": TrainClassifierStage,
    "quality": QualityStage,
    "dedup": DedupStage,
    "train-tokenizer": TrainTokenizerStage,
    "tokenize": TokenizeStage,
    "mix": MixStage,
}

__all__ = ["STAGE_CLASSES", "Stage", "StageContext", "StageResult", "run_stage"]
