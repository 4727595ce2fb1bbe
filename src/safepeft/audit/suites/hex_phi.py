"""`hex-phi`: HEx-PHI (Qi et al. 2023), 330 harmful instructions in 11 categories (category 2 withheld publicly).

Published layout (Hugging Face ``LLM-Tuning-Safety/HEx-PHI``, gated behind a license agreement): one headerless
CSV per category, ``category_1.csv`` ... ``category_11.csv``, one instruction per row (CSV-quoted when it contains
commas). Point the suite at the folder holding the files you were granted, or at one file.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import ClassVar

from safepeft.audit import taxonomy
from safepeft.audit.base import SuiteItem
from safepeft.audit.prompt_suite import PromptSuite
from safepeft.errors import DataError

CATEGORY_NAMES = {
    1: "Illegal Activity", 2: "Child Abuse Content", 3: "Hate/Harass/Violence", 4: "Malware", 5: "Physical Harm",
    6: "Economic Harm", 7: "Fraud/Deception", 8: "Adult Content", 9: "Political Campaigning",
    10: "Privacy Violation Activity", 11: "Tailored Financial Advice",
}
_FILE = re.compile(r"category_(\d+)\.csv$")


class HExPHI(PromptSuite):
    """HEx-PHI category_N.csv files (a folder, one file, or the gated hub repo with an accepted license)."""

    hub_id: ClassVar[str | None] = "LLM-Tuning-Safety/HEx-PHI"

    def load_items(self) -> list[SuiteItem]:
        items = []
        for number, path in self._files():
            name = CATEGORY_NAMES.get(number, f"category {number}")
            with open(path, newline="", encoding="utf-8-sig") as handle:
                prompts = [row[0].strip() for row in csv.reader(handle) if row and row[0].strip()]
            items.extend(
                SuiteItem(id=f"hexphi-{number}-{index}", prompt=prompt, source_category=name,
                          category=taxonomy.canonical("hex-phi", name))
                for index, prompt in enumerate(prompts)
            )
        return items

    def _files(self) -> list[tuple[int, Path]]:
        location = Path(self.source).expanduser() if self.source else None
        if location is not None and location.is_file():
            paths = [location]
        elif location is not None and location.is_dir():
            paths = sorted(location.glob("category_*.csv"))
        else:
            paths = self._download(self.source or self.hub_id or "")
        numbered = [(int(m.group(1)), p) for p in paths if (m := _FILE.search(p.name))]
        if not numbered:
            raise DataError(f"No HEx-PHI category_N.csv files at {self.source_label()}.",
                            "Pass the folder holding category_1.csv ... category_11.csv.")
        return sorted(numbered)

    @staticmethod
    def _download(repo_id: str) -> list[Path]:
        """Fetch the category files from the (gated) hub repo; needs an accepted license and HF_TOKEN."""
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        paths = []
        try:
            for number in CATEGORY_NAMES:
                try:
                    paths.append(Path(hf_hub_download(repo_id, f"category_{number}.csv", repo_type="dataset")))
                except EntryNotFoundError:
                    continue  # category 2 is not in the public release
        except Exception as exc:  # gated repo, offline, unknown id ...
            raise DataError(
                f"Could not download HEx-PHI from {repo_id}: {type(exc).__name__}.",
                "Accept the license on its hub page and set HF_TOKEN, or pass a local folder: --suite hex-phi:DIR.",
            ) from exc
        return paths
