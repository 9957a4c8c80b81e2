"""One model entry of the config, resolved once into a typed object.

:meth:`ModelSpec.from_config` fills in the defaults of the entry's kind
(:attr:`mlxas.models.registry.ModelKind.defaults`) and checks what can be checked
without data; training, tuning, the card and the model id all use the same object.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mlxas.models.registry import DEFAULT_KEYS, ModelConfigError, ModelKind, kind_class

__all__ = ["EARLY_STOPPING", "ModelSpec"]

#: What early stopping may watch: the validation loss (every head, weighted), or the
#: validation accuracy of the model's one class head.  A classifier's validation log loss
#: can rise from its first epochs on while its accuracy still rises (the probabilities grow
#: confident), so watching the loss may keep an under-trained network.
EARLY_STOPPING = ("val_loss", "val_accuracy")


@dataclass(frozen=True)
class ModelSpec:
    """A resolved ``models`` entry (see the config schema for each key).

    Units: ``learning_rate`` per step; ``input_range`` on the input's grid (Å⁻¹ for
    ``chi_k``, Å for ``ft_*``); ``params`` are the builder's settings with the kind's
    defaults filled in (for an ensemble: ``member``, ``members`` and the member's).
    ``extra_inputs``: stored features joined to ``input`` by the kind
    (:meth:`~mlxas.models.registry.ModelKind.join_inputs`); ``sample_weight``: null,
    ``balanced`` (class heads) or the name of a dataset array holding the weights.
    ``early_stopping``: what the trainer's early stopping watches (:data:`EARLY_STOPPING`).
    """

    name: str
    kind: str
    input: str = "chi_k"
    features: dict[str, Any] = field(default_factory=dict)
    input_range: tuple[float, float] | None = None
    targets: tuple[str, ...] = ("cn", "r")
    loss_weights: dict[str, float] = field(default_factory=dict)
    epochs: int = 400
    batch_size: int = 32
    learning_rate: float = 0.001
    patience: int = 40
    optimizer: str = "adam"
    standardize: bool = True
    lr_schedule: str | None = None
    jit_compile: bool | str = "auto"
    steps_per_execution: int = 32
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, Any] = field(default_factory=dict)
    extra_inputs: tuple[str, ...] = ()
    sample_weight: str | None = None
    early_stopping: str = "val_loss"

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> ModelSpec:
        """Resolve one config entry: the kind's defaults for every setting left null."""
        entry = copy.deepcopy(dict(entry))
        kind, name = entry.get("kind"), entry.get("name", "?")
        kind_cls = kind_class(kind, f"models.{name}")
        params = dict(entry.get("params") or {})
        if kind == "ensemble":
            member = params.get("member", "mlp")
            member_cls = kind_class(member, f"models.{name}.params.member")
            if member_cls.backend != "keras" or member == "ensemble":
                raise ModelConfigError(
                    f"models.{name}: ensemble member kind {member!r} is not a Keras network kind"
                )
            defaults = member_cls.defaults
            params = {**copy.deepcopy(defaults["params"]), "member": member, "members": 5,
                      **params}  # fmt: skip
            if int(params["members"]) < 2:
                raise ModelConfigError(f"models.{name}: an ensemble needs members >= 2")
        else:
            defaults = kind_cls.defaults
            params = {**copy.deepcopy(defaults["params"]), **params}
        entry["params"] = params
        for key in DEFAULT_KEYS:
            if entry.get(key) is None:
                entry[key] = defaults[key]
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ModelConfigError(f"models.{name}: unknown key(s) {unknown}")
        entry["early_stopping"] = entry.get("early_stopping") or "val_loss"
        if entry["early_stopping"] not in EARLY_STOPPING:
            raise ModelConfigError(
                f"models.{name}: early_stopping {entry['early_stopping']!r} is not one of "
                f"{list(EARLY_STOPPING)}"
            )
        for key in ("targets", "input_range", "extra_inputs"):
            if entry.get(key) is not None:
                entry[key] = tuple(entry[key])
        for key in ("features", "loss_weights", "augment"):
            entry[key] = dict(entry.get(key) or {})
        return cls(**entry)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Back from :meth:`to_dict` (a card's ``config``); resolving again changes nothing."""
        return cls.from_config(data)

    def to_dict(self) -> dict[str, Any]:
        from mlxas.settings import to_dict

        out = to_dict(self)
        # Left out at its default: cards written before the key existed hold no such key,
        # and the model id hashes the card, so a retraining from their config keeps its id.
        if out["early_stopping"] == "val_loss":
            del out["early_stopping"]
        return out

    @property
    def member_kind(self) -> str:
        """The kind of each network: the ensemble's member kind, else the kind."""
        return self.params["member"] if self.kind == "ensemble" else self.kind

    def model_kind(self) -> ModelKind:
        """The :class:`~mlxas.models.registry.ModelKind` (an instance) that trains each
        network: the member kind of an ensemble."""
        return kind_class(self.member_kind, f"models.{self.name}")()

    @property
    def n_members(self) -> int:
        return int(self.params["members"]) if self.kind == "ensemble" else 1

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with ``changes`` (e.g. another input for a tuning trial)."""
        return replace(self, **changes)
