"""The compiled, frozen rule table: the only part of `service.ruletable` the engine reads."""

from service.ruletable.compiled.addons import AddonCode, AddonPairing
from service.ruletable.compiled.code_rules import CodeWindow, NotPayable, PayerPrimary
from service.ruletable.compiled.diagnoses import (
    CodeSetEdition,
    DiagnosisCodeSet,
    icd_display,
    icd_key,
)
from service.ruletable.compiled.frequency import (
    FrequencyLimit,
    FrequencyLimits,
    longest_window_days,
)
from service.ruletable.compiled.policies import (
    CodePairing,
    LevelLimit,
    MueLimit,
    PayerRules,
    Policies,
    PolicyRef,
)
from service.ruletable.compiled.provenance import Provenance
from service.ruletable.compiled.table import FeeIndicators, RuleInfo, RuleTable, is_procedure_code

__all__ = [
    "AddonCode",
    "AddonPairing",
    "CodePairing",
    "CodeSetEdition",
    "CodeWindow",
    "DiagnosisCodeSet",
    "FeeIndicators",
    "FrequencyLimit",
    "FrequencyLimits",
    "LevelLimit",
    "MueLimit",
    "NotPayable",
    "PayerPrimary",
    "PayerRules",
    "Policies",
    "PolicyRef",
    "Provenance",
    "RuleInfo",
    "RuleTable",
    "icd_display",
    "icd_key",
    "is_procedure_code",
    "longest_window_days",
]
