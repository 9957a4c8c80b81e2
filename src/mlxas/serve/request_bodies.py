"""Request bodies of ``mlxas serve``: the pydantic models of a spectrum and a batch, and
the parsing of the raw ``POST /predict`` body, whose errors are answered as FastAPI
answers body errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

__all__ = ["SPECTRUM_BODY", "BadSpectrum", "BatchIn", "SpectrumIn", "parse_spectrum"]


class SpectrumIn(BaseModel):
    # Numbers must be JSON numbers: pydantic's lax mode would read "8979.5" and true as
    # numbers, and an unknown key ("energy_unit", a misspelt "element") would be dropped.
    model_config = ConfigDict(extra="forbid")

    energy: list[StrictFloat] = Field(description="energies in eV, increasing")
    mu: list[StrictFloat] = Field(description="mu(E), one value per energy")
    name: str = Field("spectrum", max_length=500, description="returned as 'source'")
    element: str | None = Field(None, max_length=3, description="absorber, as a file header")
    edge: str | None = Field(None, max_length=4, description="edge (K, L3, ...)")
    model: str | None = Field(None, description="model name or id (default: the only one)")


@dataclass(frozen=True)
class BadSpectrum:
    """A batch item that is not a spectrum (a string for a number, a missing field): it
    is refused with the reason while the other spectra of the batch are predicted."""

    name: str
    reason: str


def _each_alone(value: Any, handler: ValidatorFunctionWrapHandler) -> SpectrumIn | BadSpectrum:
    try:
        return handler(value)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        where = [f"{'.'.join(map(str, e['loc'])) or 'spectrum'}: {e['msg']}" for e in errors]
        more = f" (and {len(where) - 1} more)" if len(where) > 1 else ""
        name = value.get("name") if isinstance(value, dict) else None
        return BadSpectrum(name if isinstance(name, str) else "spectrum", where[0] + more)


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Each spectrum is validated alone (its JSON schema is SpectrumIn's).
    spectra: list[Annotated[SpectrumIn, WrapValidator(_each_alone)]]
    model: str | None = None


def parse_spectrum(body: bytes) -> SpectrumIn:
    """The request body as a :class:`SpectrumIn`, parsed and validated in one pass by
    pydantic's JSON parser; errors are answered 422 as FastAPI answers them."""
    try:
        return SpectrumIn.model_validate_json(body)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        bad_json = [e for e in errors if e["type"] == "json_invalid"]
        if bad_json:
            error = bad_json[0].get("ctx", {}).get("error", bad_json[0]["msg"])
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error",
                  "input": {}, "ctx": {"error": str(error)}}]
            ) from None  # fmt: skip
        raise RequestValidationError([_in_body(e) for e in errors]) from None


def _in_body(error: dict) -> dict:
    """A pydantic error as FastAPI reports a body error: located under ``body``, with its
    context as text (it may hold exception objects)."""
    out = {**error, "loc": ("body", *error["loc"])}
    if "ctx" in error:
        out["ctx"] = {k: str(v) for k, v in error["ctx"].items()}
    return out


#: OpenAPI description of the /predict body, which is parsed from the raw bytes.
SPECTRUM_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": SpectrumIn.model_json_schema()}},
    }
}
