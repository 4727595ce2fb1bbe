"""Reading a run store from outside the process that writes it (kill and Ctrl-C tests)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def generation_rows(run_dir: Path) -> int:
    """Generations committed to RUN_DIR/store.sqlite so far (0 while the store does not exist or is locked)."""
    path = Path(run_dir) / "store.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
