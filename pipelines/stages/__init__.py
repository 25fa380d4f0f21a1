"""The stage classes, by name; their order and what each reads are in `pipelines.registry`."""

from pipelines.registry import STAGES
from pipelines.stage import Stage, StageContext, StageResult, run_stage
from pipelines.stages.classifier import TrainClassifierStage
from pipelines.stages.decontaminate import DecontaminateStage
from pipelines.stages.dedup import DedupStage
from pipelines.stages.extract import ExtractStage
from pipelines.stages.langid import LangIdStage
from pipelines.stages.mix import MixStage
from pipelines.stages.quality import QualityStage
from pipelines.stages.tokenize import TokenizeStage
from pipelines.stages.train_tokenizer import TrainTokenizerStage

_CLASSES: list[type[Stage]] = [
    ExtractStage,
    LangIdStage,
    TrainClassifierStage,
    QualityStage,
    DedupStage,
    DecontaminateStage,
    TrainTokenizerStage,
    TokenizeStage,
    MixStage,
]
# In the registry's order; a stage missing from either side fails at import.
STAGE_CLASSES: dict[str, type[Stage]] = {
    name: next(c for c in _CLASSES if c.name == name) for name in STAGES
}
assert len(STAGE_CLASSES) == len(_CLASSES), "every stage class must be in pipelines.registry"

__all__ = ["STAGE_CLASSES", "Stage", "StageContext", "StageResult", "run_stage"]
