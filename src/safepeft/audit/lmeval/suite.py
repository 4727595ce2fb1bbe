"""`--suite lm-eval:TASK[,TASK...]`: task utility from lm-evaluation-harness, run through its API on the audited model.

Each TASK is an lm-eval task, group or tag name (``arc_easy``, ``mmlu``, ``gsm8k``) or the path of a task YAML
(``dataset_path: json`` with local ``data_files`` needs no hub). Hub tasks download their dataset through `datasets`,
so they need network or a warm datasets cache (``HF_DATASETS_CACHE``; ``HF_DATASETS_OFFLINE=1`` then reads it
offline). The audit's ``--split``, ``--per-category`` (per task) and ``--limit`` choose documents by id before lm-eval
runs, and lm-eval scores only those (``simple_evaluate(samples=...)``).

Scoring is lm-eval's: its per-document metrics (``log_samples=True``) become one sample per document, id
``TASK/DOC_ID``, whose score is the task's first metric under its first filter (``acc`` for multiple choice,
``exact_match,strict-match`` for gsm8k). ``accuracy`` is the mean of those scores over all documents with a
Clopper–Pearson (0/1 scores) or bootstrap 95% CI, so the paired efficacy statistics pair documents across variants;
``by_category`` has the same per task. lm-eval's own aggregates are kept in the params for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from safepeft.audit.base import AuditOptions, Suite
from safepeft.audit.metrics import bootstrap_mean
from safepeft.audit.prompt_suite import split_params
from safepeft.audit.selection import select_items
from safepeft.errors import ConfigError, DataError, MissingDependencyError, missing_dependency
from safepeft.models.protocol import Generator
from safepeft.records.results import CategoryResult, Metric, Sample, SuiteResult

SUPPORTED_OUTPUT_TYPES = ("multiple_choice", "generate_until")
"""What the Generator protocol can score (see safepeft.audit.lmeval.model for why not the others)."""
ACCURACY_METRICS = ("acc", "exact_match")
"""Main metrics that make the headline an accuracy (else it is named ``score``)."""


@dataclass(frozen=True)
class _Doc:
    id: str
    category: str
    index: int


class LMEvalSuite(Suite):
    """lm-evaluation-harness tasks on the audited model: `lm-eval:TASK[,TASK...]`, names or task YAML paths.

    Multiple-choice and generate_until tasks; accuracy with a 95% CI and one sample per document."""

    kind: ClassVar[str] = "utility"
    needs_source: ClassVar[bool] = True

    @property
    def result_name(self) -> str:
        """``lm-eval:arc_easy``: two audits of different tasks in one run are two results."""
        return f"{self.name}:{self.source}" if self.source else self.name

    def tasks(self) -> list[str]:
        names = [part.strip() for part in (self.source or "").split(",") if part.strip()]
        if not names:
            raise ConfigError("The lm-eval suite needs at least one task.",
                              "Use `--suite lm-eval:arc_easy`, `--suite lm-eval:mmlu,gsm8k` or "
                              "`--suite lm-eval:path/to/task.yaml`.")
        return names

    def run(self, generator: Generator, judge: Any, options: AuditOptions) -> SuiteResult:
        names = self.tasks()
        lm_eval, task_manager_class = _lm_eval()
        from safepeft.audit.lmeval.model import GeneratorLM

        # Indexing lm-eval's ~10k bundled task files takes seconds: skip it when every task is a YAML file.
        manager = task_manager_class(include_defaults=not all(_is_yaml(n) for n in names))
        tasks = _load(manager, names)
        chosen = _choose(tasks, options)
        params: dict[str, Any] = {"tasks": names, "lm_eval_version": getattr(lm_eval, "__version__", None),
                                  "chat_template": True, **split_params(options)}
        if not chosen:
            return SuiteResult(kind=self.kind, n=0, metrics={}, params=params)
        lm = GeneratorLM(generator, system_prompt=options.system_prompt, seed=options.seed)
        every = all(len(chosen[name]) == len(tasks[name].eval_docs) for name in chosen)
        results = lm_eval.simple_evaluate(
            model=lm, tasks=[tasks[name] for name in chosen], task_manager=manager,
            apply_chat_template=True, fewshot_as_multiturn=True, log_samples=True,
            bootstrap_iters=0,  # our CIs come from the per-document samples
            **({} if every else {"samples": _samples_argument(lm_eval, chosen)}),
        )
        result = score_samples(results["samples"], options)
        result.params.update(params)
        result.params["lm_eval"] = {task: {k: v for k, v in values.items() if isinstance(v, (int, float))}
                                    for task, values in results["results"].items()}
        result.params["num_fewshot"] = results.get("n-shot", {})
        return result


def score_samples(samples: dict[str, list[dict[str, Any]]], options: AuditOptions) -> SuiteResult:
    """lm-eval's logged samples -> a utility SuiteResult (one Sample per document; see the module docstring)."""
    out: list[Sample] = []
    values: dict[str, dict[str, float]] = {}  # sample id -> metric key -> value
    main: dict[str, str] = {}
    for task, rows in samples.items():
        first: dict[int, dict[str, Any]] = {}
        for row in rows:
            first.setdefault(row["doc_id"], row)
            key_values = values.setdefault(f"{task}/{row['doc_id']}", {})
            for metric in row["metrics"]:
                value = row.get(metric)
                if isinstance(value, (bool, int, float)):  # corpus-level metrics (bleu, f1) log tuples: skipped
                    key = metric if row["filter"] == "none" else f"{metric},{row['filter']}"
                    key_values[key] = float(value)
                    main.setdefault(task, key)
        if task not in main:
            raise DataError(f"lm-eval task {task!r} logged no per-document number to score.",
                            "Use a task whose metric is averaged per document (acc, exact_match ...).")
        for doc_id, row in sorted(first.items()):
            sample_id = f"{task}/{doc_id}"
            out.append(_sample(sample_id, task, row, values[sample_id].get(main[task]), values[sample_id]))
    headline = "accuracy" if all(k.split(",")[0] in ACCURACY_METRICS for k in main.values()) else "score"
    metrics = _metrics(out, values, headline, options)
    by_category = {task: CategoryResult(n=len(members), metrics=_metrics(members, values, headline, options))
                   for task in main if (members := [s for s in out if s.category == task])}
    return SuiteResult(kind="utility", n=len(out), metrics=metrics, by_category=by_category,
                       params={"scoring": "lm-eval", "main_metric": main}, samples=out)


def _metrics(samples: list[Sample], values: dict[str, dict[str, float]], headline: str,
             options: AuditOptions) -> dict[str, Metric]:
    metrics = {headline: bootstrap_mean([s.score for s in samples], options.bootstrap, options.seed)}
    shared = set.intersection(*(set(values[s.id]) for s in samples)) if samples else set()
    for key in sorted(shared):  # a metric every document has (acc and acc_norm of multiple-choice tasks)
        metrics[key] = bootstrap_mean([values[s.id][key] for s in samples], options.bootstrap, options.seed)
    return metrics


def _sample(sample_id: str, task: str, row: dict[str, Any], score: float | None,
            values: dict[str, float]) -> Sample:
    from safepeft.audit.lmeval.model import to_prompt

    context = to_prompt(row["arguments"][0][0])
    prompt = context if isinstance(context, str) else next(
        (m["content"] for m in reversed(context) if m["role"] == "user"), "")
    response = row["filtered_resps"][0] if row.get("filtered_resps") else None
    completion = response if isinstance(response, str) else None  # multiple choice logs (logprob, greedy) pairs
    return Sample(id=sample_id, category=task, prompt=prompt, completion=completion, score=score,
                  extra={"target": str(row.get("target")), **values})


def _lm_eval() -> tuple[Any, Any]:
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise missing_dependency("lm-eval", "The lm-eval suite", "'safepeft[lmeval]'") from exc
    return lm_eval, TaskManager


def _samples_argument(lm_eval: Any, chosen: dict[str, list[int]]) -> dict[str, list[int]]:
    import inspect

    if "samples" not in inspect.signature(lm_eval.simple_evaluate).parameters:
        raise MissingDependencyError(
            f"lm-eval {getattr(lm_eval, '__version__', '?')} cannot score a subset of documents "
            "(its simple_evaluate has no `samples`), which --split, --per-category and --limit need.",
            "Upgrade it: pip install -U 'lm-eval>=0.4.13' (the release safepeft is tested with), or audit every "
            "document.")
    return chosen


def _is_yaml(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) and Path(name).expanduser().is_file()


def _load(manager: Any, names: list[str]) -> dict[str, Any]:
    """Leaf tasks by name (groups and tags expand to their tasks), each of an output type we can score."""
    tasks: dict[str, Any] = {}
    for name in names:
        spec = str(Path(name).expanduser()) if _is_yaml(name) else name
        try:
            loaded = manager.load([spec])
        except KeyError as exc:
            raise ConfigError(f"lm-eval knows no task, group or tag {name!r}.",
                              "Use a name from `lm-eval ls tasks` (older releases: `lm_eval --tasks list`) or "
                              "the path of a task YAML file.") from exc
        except Exception as exc:  # datasets raises many kinds (offline, missing file, gated); all mean "no data"
            raise DataError(f"lm-eval task {name!r} could not load its dataset: {exc}",
                            "Hub tasks need network or their dataset in the local datasets cache "
                            "(HF_DATASETS_CACHE); offline, write a task YAML with `dataset_path: json` and "
                            "local `data_files`.") from exc
        tasks.update(loaded["tasks"])
    wrong = {n: t.OUTPUT_TYPE for n, t in tasks.items() if t.OUTPUT_TYPE not in SUPPORTED_OUTPUT_TYPES}
    if wrong:
        raise ConfigError(f"lm-eval tasks of an output type the Generator protocol cannot score: {wrong}.",
                          f"Use tasks of type {' or '.join(SUPPORTED_OUTPUT_TYPES)} (loglikelihood tasks read "
                          "whether the continuation is the greedy one; perplexity needs raw-text scoring).")
    return tasks


def _choose(tasks: dict[str, Any], options: AuditOptions) -> dict[str, list[int]]:
    """Document indices per task after the split, --per-category (per task) and --limit; tasks left empty drop."""
    docs = [_Doc(f"{name}/{i}", name, i) for name, task in tasks.items() for i in range(len(task.eval_docs))]
    kept = select_items(docs, options.per_category, options.limit, options.seed, options.split,
                        options.validation_share)
    chosen: dict[str, list[int]] = {}
    for doc in kept:
        chosen.setdefault(doc.category, []).append(doc.index)
    return chosen
