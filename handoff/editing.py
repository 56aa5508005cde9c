"""Owner edits of the handoff policy: which settings may change, checks, and saving.

The dashboard changes dotted paths (`EDITABLE`: every boolean and number of the policy,
read from its schema); every change is checked
against its type and bounds, then the whole result is validated by `PolicySettings`
before anything is written. The file is replaced atomically (temp file + rename), so a
crash never leaves half a policy behind. Comments in the old file are not kept: the
file is rewritten from the settings, with a header that says so.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from handoff.policy import PolicySettings

_MONEY_MAX = 10_000_000.0

FILE_HEADER = """\
# When a conversation goes from the bot to a person (Tandem's handoff policy).
# This file was last saved from the owner dashboard, which rewrites it from the settings:
# comments added by hand are NOT kept when the dashboard saves. Every key is optional;
# a misspelt key is reported when Tandem starts.
"""


@dataclass(frozen=True)
class Editable:
    path: str
    label: str
    type: str  # boolean, integer, number
    min: float | None = None
    max: float | None = None
    nullable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Clearer words than the field names, where the field name alone would puzzle an owner.
_LABELS = {
    "enabled": "Hand conversations to people at all",
    "min_intent_confidence": "NLU confidence an intent needs to count",
    "combined_bump": "Priority added for each further reason",
    "max_combined_bump": "At most this much priority added",
    "triggers.frustration.threshold": "Frustration index that hands off",
    "triggers.negative_streak.score_cutoff": "A message at or below this score is negative",
    "triggers.negative_streak.turns": "Negative messages in a row",
    "triggers.fallbacks.count": "Bot misunderstandings in a row",
    "triggers.fallbacks.pleased_score": "A misunderstood message this positive does not count",
    "triggers.repeated_intent.count": "Same question this many times",
    "triggers.high_value.lifetime_value": "High value: lifetime value at least",
    "triggers.high_value.open_order_value": "High value: an open order worth at least",
    "triggers.high_value.negative_cutoff": "High value: a routine question counts as a "
    "problem at or below this score",
    "triggers.large_cancellation.order_value": "Large cancellation: order worth at least",
    "triggers.purchase_intent.value": "Sales lead: a stated basket worth at least",
    "triggers.stuck.bot_repeats": "Stuck: bot re-asks or failures in a row",
    "triggers.stuck.similarity": "Stuck: how alike two bot replies must be (0-100)",
    "triggers.stuck.pings": "Stuck: 'hello?' / 'anyone there?' messages in a row",
    "triggers.shouting.min_letters": "Shouting: letters at least",
    "triggers.shouting.caps_share": "Shouting: share of capitals at least",
}
_COUNT_MAX = 100


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for rule in info.metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return low, high


def _walk(model: type[BaseModel], prefix: str) -> list[Editable]:
    """Every boolean and number of the policy, found in its schema: a new threshold in
    handoff.py is editable on the dashboard without another line here."""
    items: list[Editable] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        kinds = set(get_args(info.annotation)) or {info.annotation}
        nullable = type(None) in kinds
        kinds.discard(type(None))
        kind = next(iter(kinds)) if len(kinds) == 1 else None
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            items += _walk(kind, f"{path}.")
            continue
        low, high = _bounds(info)
        title = prefix.removeprefix("triggers.").rstrip(".").replace("_", " ").capitalize()
        words = name.replace("_", " ")
        if kind is bool:
            label = f"{title}: on" if name == "enabled" and title else _LABELS.get(path, words)
            items.append(Editable(path, label, "boolean"))
        elif kind is int:
            label = _LABELS.get(path, f"{title}: {words}" if title else words)
            top = _COUNT_MAX if high is None else high
            items.append(Editable(path, label, "integer", low, top))
        elif kind is float:
            label = _LABELS.get(path, f"{title}: {words}" if title else words)
            top = _MONEY_MAX if high is None else high
            items.append(Editable(path, label, "number", low, top, nullable=nullable))
    return items


def _editable() -> list[Editable]:
    return _walk(PolicySettings, "")


EDITABLE: list[Editable] = _editable()
EDITABLE_BY_PATH: dict[str, Editable] = {item.path: item for item in EDITABLE}


class PolicyEditError(ValueError):
    """A refused change; `field` is the dotted path, `reason` is fit to show."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _check(item: Editable, value: Any) -> Any:
    if value is None:
        if item.nullable:
            return None
        raise PolicyEditError(item.path, "a value is required")
    if item.type == "boolean":
        if not isinstance(value, bool):
            raise PolicyEditError(item.path, f"expected true or false, got {value!r}")
        return value
    # bool is an int in Python; true is not a number of turns.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyEditError(item.path, f"expected a number, got {value!r}")
    if item.type == "integer":
        if isinstance(value, float) and not value.is_integer():
            raise PolicyEditError(item.path, f"expected a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise PolicyEditError(item.path, "expected a finite number")
    if item.min is not None and value < item.min:
        raise PolicyEditError(item.path, f"must be at least {item.min:g}, got {value!r}")
    if item.max is not None and value > item.max:
        raise PolicyEditError(item.path, f"must be at most {item.max:g}, got {value!r}")
    return value


def apply_changes(policy: PolicySettings, changes: dict[str, Any]) -> PolicySettings:
    """A new policy with `changes` applied (the old one is untouched); PolicyEditError."""
    if not isinstance(changes, dict) or not changes:
        raise PolicyEditError("changes", "give at least one setting to change")
    data = policy.model_dump(mode="json")
    for path, value in changes.items():
        item = EDITABLE_BY_PATH.get(path)
        if item is None:
            raise PolicyEditError(path, "this setting cannot be changed from the dashboard")
        checked = _check(item, value)
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = checked
    try:
        return PolicySettings.model_validate(data)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise PolicyEditError(where, str(problem["msg"])) from None


def changed_paths(before: PolicySettings, after: PolicySettings) -> dict[str, dict[str, Any]]:
    """{path: {"from": old, "to": new}} over the editable settings (for the audit log)."""
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    diff: dict[str, dict[str, Any]] = {}
    for item in EDITABLE:
        a, b = old, new
        for part in item.path.split("."):
            a, b = a[part], b[part]
        if a != b:
            diff[item.path] = {"from": a, "to": b}
    return diff


def policy_yaml(policy: PolicySettings) -> str:
    body = yaml.safe_dump(
        policy.model_dump(mode="json"), sort_keys=False, default_flow_style=False, width=100
    )
    return FILE_HEADER + "\n" + body


def save_policy(path: Path | str, policy: PolicySettings) -> None:
    """Write the policy to `path` atomically (same directory temp file, then rename)."""
    target = Path(path)
    text = policy_yaml(policy)
    # Check the round trip before replacing anything.
    PolicySettings.model_validate(yaml.safe_load(text))
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            os.chmod(temp, target.stat().st_mode & 0o777)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
