"""The recordings package's settings sections: config.yaml's recordings, retention and qa."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field, field_validator

from casebook.settings import Section


class RecordingsSettings(Section):
    root: Path = Path("var/recordings")


class RetentionSettings(Section):
    recordings_days: int = Field(365, ge=1)


class QaCriterion(Section):
    code: str = Field(pattern=r"^[a-z][a-z_]*$")
    label_ar: str
    weight: float = Field(1.0, gt=0)
    # "0-2": not met / partly / fully; "yes/no": met or not.
    scale: Literal["0-2", "yes/no"] = "0-2"


def _criterion(code: str, label_ar: str, weight: float, scale: str = "0-2") -> QaCriterion:
    return QaCriterion.model_validate(
        {"code": code, "label_ar": label_ar, "weight": weight, "scale": scale}
    )


class QaSettings(Section):
    """The QA scorecard: what callers expect from complaint staff, each weighted and scaled."""

    criteria: list[QaCriterion] = Field(
        default_factory=lambda: [
            _criterion("listening_empathy", "الاستماع الجيد والتعاطف", 1.5),
            _criterion("seriousness", "الجدية في التعامل مع الشكوى", 1.0),
            _criterion("transparency", "الشفافية والوضوح", 1.0),
            _criterion("neutrality", "الحيادية والإنصاف", 1.0),
            _criterion("speed", "السرعة في الاستجابة", 1.0),
            _criterion("keeping_in_touch", "التواصل المستمر", 1.0),
            _criterion("practical_solutions", "تقديم حلول عملية", 1.5),
            _criterion("confidentiality", "السرية وحماية البيانات", 1.0, "yes/no"),
            _criterion("professionalism", "المهنية والاحترام", 1.0),
            _criterion("rebuilding_trust", "إعادة بناء الثقة", 1.0),
        ],
        min_length=1,
    )

    @field_validator("criteria")
    @classmethod
    def _unique_codes(cls, value: list[QaCriterion]) -> list[QaCriterion]:
        codes = [criterion.code for criterion in value]
        if len(set(codes)) != len(codes):
            raise ValueError("criterion codes must be unique")
        return value


class RecordingsConfig(Protocol):
    """The sections recordings services read (hotline.app.config.Settings has them)."""

    @property
    def recordings(self) -> RecordingsSettings: ...
    @property
    def retention(self) -> RetentionSettings: ...
