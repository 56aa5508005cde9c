"""The Rasa data stays consistent: generated form rules, slot mappings and the held-out set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
VALUE_INTENTS = {"inform", "affirm", "deny"}


def test_form_rules_are_generated_from_the_current_data() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/form_rules.py", "--check"], cwd=ROOT, capture_output=True
    )
    assert result.returncode == 0, result.stderr.decode()


def test_free_text_slots_never_swallow_a_question_or_an_exit() -> None:
    """Every from_text mapping excludes every intent that is not an answer, so a question
    asked mid-form reaches the rules instead of being taken as an e-mail or a name."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    expected = set(domain["intents"]) - VALUE_INTENTS
    for name, slot in domain["slots"].items():
        for mapping in slot.get("mappings", []):
            if mapping["type"] == "from_text":
                assert set(mapping["not_intent"]) == expected, name


def test_every_intent_has_enough_training_and_held_out_examples() -> None:
    def counts(path: Path) -> dict[str, int]:
        data = yaml.safe_load(path.read_text())["nlu"]
        return {
            block["intent"]: sum(
                line.strip().startswith("- ") for line in block["examples"].splitlines()
            )
            for block in data
            if "intent" in block
        }

    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    training, held_out = counts(ROOT / "data/nlu.yml"), counts(ROOT / "tests/nlu_holdout.yml")
    for intent in domain["intents"]:
        assert training.get(intent, 0) >= 60, intent
        assert held_out.get(intent, 0) >= 15, intent
