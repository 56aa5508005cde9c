"""Frustration model (Mood) on the User Satisfaction Simulation dialogues.

    .venv/bin/python bench/frustration.py [--model PATH] [--folds 5] [--record]

Reads MWOZ/ReDial/CCPE from ../shared/datasets/user_satisfaction (or $TANDEM_DATASETS)
in place and skips if absent. Reports the AUC cross-validated by dialogue (the same
GroupKFold fit as `python -m sentiment.fit_frustration`; these files are the ones the
weights were fitted on, so the shipped weights' own AUC is in-sample and shown apart),
sentiment alone for comparison, each component's weight and mean contribution, precision
and recall at thresholds, and how conversations cross the handoff threshold.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import record_section  # noqa: E402
from sentiment import fit_frustration as fit  # noqa: E402
from sentiment.mood import COMPONENTS, MoodSettings  # noqa: E402


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def say(msg: str) -> None:
    print(msg, flush=True)


def dialogue_crossings(rows: fit.Rows, predicted: Sequence[float], threshold: float) -> dict:
    """Per dialogue: did the index cross the threshold before/at/after the first
    dissatisfied turn, and how often did it cross in dialogues without one."""
    by_dialogue: dict[str, list[tuple[int, float]]] = {}
    for group, label, p in zip(rows.groups, rows.labels, predicted, strict=True):
        by_dialogue.setdefault(group, []).append((label, p))
    outcome: Counter[str] = Counter()
    calm: Counter[str] = Counter()
    for turns in by_dialogue.values():
        first_bad = next((i for i, (y, _) in enumerate(turns) if y), None)
        first_cross = next((i for i, (_, p) in enumerate(turns) if p >= threshold), None)
        if first_bad is None:
            calm["crossed" if first_cross is not None else "quiet"] += 1
        elif first_cross is None:
            outcome["never"] += 1
        else:
            lead = first_bad - first_cross
            outcome["before" if lead > 0 else "at" if lead == 0 else "after"] += 1
    bad = sum(outcome.values())
    return {
        "dissatisfied_dialogues": bad,
        "share": {k: outcome[k] / max(1, bad) for k in ("before", "at", "after", "never")},
        "calm_dialogues": sum(calm.values()),
        "false_alarm_rate": calm["crossed"] / max(1, sum(calm.values())),
    }


def contributions(rows: fit.Rows, settings: MoodSettings) -> list[dict[str, Any]]:
    """Mean contribution (log-odds) of each component on dissatisfied vs other turns."""
    model = settings.frustration_model
    out = []
    for j, name in enumerate(COMPONENTS):
        w = model.components[name].weight
        bad = [r[j] * w for r, y in zip(rows.features, rows.labels, strict=True) if y]
        good = [r[j] * w for r, y in zip(rows.features, rows.labels, strict=True) if not y]
        out.append(
            {
                "name": name,
                "coef": model.components[name].coef,
                "weight": w,
                "fitted": model.components[name].fitted,
                "bad": statistics.fmean(bad),
                "good": statistics.fmean(good),
                "active": sum(abs(r[j]) >= 0.5 for r in rows.features) / len(rows.features),
            }
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="sentiment model (default: trained)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args(argv)
    command = (
        "python bench/frustration.py"
        + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    )

    files = fit.uss_files()
    if not files:
        say("skipping: no User Satisfaction Simulation files under ../shared/datasets")
        return 0
    settings = MoodSettings()
    meta = settings.frustration_model.metadata
    rows = fit.replay(files, model=args.model)
    say("cross-validating (GroupKFold by dialogue)")
    oof = fit.cross_validate(rows, args.folds)
    cv = fit.auc_table(rows, oof)
    shipped = fit.auc_table(rows, rows.frustration)
    th = fit.thresholds(rows.labels, rows.frustration)
    th_cv = fit.thresholds(rows.labels, oof)
    threshold = settings.escalation_threshold
    crossings = dialogue_crossings(rows, rows.frustration, threshold)
    comps = contributions(rows, settings)

    lines = [
        f"User Satisfaction Simulation ({', '.join(f.name for f in files)}; read in place): "
        f"{rows.dialogues} dialogues, {len(rows.labels)} rated user turns, "
        f"{sum(rows.labels)} dissatisfied (majority rating 1-2). Weights: "
        f"`sentiment/data/frustration_weights.yaml` ({meta.get('command', '?')}, "
        f"{meta.get('date', '?')}; sentiment model {meta.get('sentiment_model', '?')}).",
        "",
        "| data | turns | dissatisfied | AUC, cross-validated by dialogue | AUC, sentiment alone "
        "| AUC, shipped weights (in-sample) |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {t['turns']} | {t['dissatisfied']} | **{t['model']:.3f}** | "
            f"{t['sentiment']:.3f} | {shipped[name]['model']:.3f} |"
            for name, t in cv.items()
        ),
        "",
        "Targets: cross-validated AUC ≥ 0.78 overall and above sentiment alone.",
        "",
        f"Intercept {settings.frustration_model.intercept:+.3f} (calm baseline p = "
        f"{settings.frustration_model.probability(settings.frustration_model.intercept):.3f})."
        " Contribution = weight x value, in log-odds:",
        "",
        "| component | fitted | coef (per std) | weight (per unit) | on (≥ 0.5) "
        "| mean contribution, dissatisfied | mean contribution, other |",
        "|---|---|---:|---:|---:|---:|---:|",
        *(
            f"| {c['name']} | {'yes' if c['fitted'] else 'prior/0'} | {c['coef']:+.3f} | "
            f"{c['weight']:+.3f} | {c['active']:.1%} | {c['bad']:+.3f} | {c['good']:+.3f} |"
            for c in comps
        ),
        "",
        "Precision / recall of turns flagged (shipped weights; out-of-fold in brackets):",
        "",
        "| threshold | flagged | precision | recall |",
        "|---:|---:|---:|---:|",
    ]
    for t, m in th["at"].items():
        o = th_cv["at"][t]
        lines.append(
            f"| {t} | {m['flagged']} ({o['flagged']}) | {pct(m['precision'])} "
            f"({pct(o['precision'])}) | {pct(m['recall'])} ({pct(o['recall'])}) |"
        )
    p90 = th["precision_0_9"]
    lines += [
        "",
        (
            f"Lowest threshold with precision ≥ 0.9 on USS: {p90['threshold']:.2f} "
            f"(recall {p90['recall']:.3f})."
            if p90
            else f"No threshold reaches precision 0.9 on USS (max {th['max_precision']:.2f})."
        ),
        "",
        f"Dialogues with a dissatisfied turn ({crossings['dissatisfied_dialogues']}): "
        f"the index crossed {threshold} before / at / after the first one / never: "
        + " / ".join(f"{crossings['share'][k]:.1%}" for k in ("before", "at", "after", "never"))
        + f". Dialogues without one ({crossings['calm_dialogues']}) where it crossed: "
        f"{crossings['false_alarm_rate']:.1%}.",
        "",
        "USS has no bot fallbacks: a system turn that says it could not help is fed as one "
        "(`sentiment/fit_frustration.py`). Components USS rarely shows keep a prior weight.",
    ]
    print("\n".join(lines))
    if args.record:
        record_section("Frustration model", command, lines)
        say("updated bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
