"""Flow files: the IVR's menus and Arabic prompts as data, validated on load.

A flow is a set of named nodes walked from ``start``; each node names the prompts it plays by id,
and every prompt id maps to its Arabic text (rendered to audio by ``build_prompts``). Any mistake,
a misspelt key, an unknown node or prompt, a status without a prompt, is one ``FlowError`` line
naming the file and the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from casebook.models import KEYPAD_DIGITS
from ivr_flows.backend import STATUS_CODES

BUILTIN_FLOW = Path(__file__).resolve().parent / "flows" / "hotline.yaml"
# Prompt ids become file names under <sounds>/<lang>/hotline/: keep them plain.
PROMPT_ID = re.compile(r"^[a-z0-9_]+$")
DTMF_KEYS = frozenset("0123456789*#")
# The dialplan plays this prompt when no agent answers the queue a transfer node leads to.
AGENTS_BUSY_PROMPT = "agents_busy"


class FlowError(Exception):
    """A flow file problem, one line naming the file and the key."""


class _Model(BaseModel):
    # extra="forbid" turns a misspelt key into an error instead of a silently ignored one.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Model):
    next: str
    # Session values a choice sets, e.g. {category: billing} for the complaint that follows.
    set: dict[str, str] = Field(default_factory=dict)


class PlayNode(_Model):
    type: Literal["play"]
    prompt: str
    next: str


class MenuNode(_Model):
    type: Literal["menu"]
    prompt: str
    choices: dict[str, Choice]
    no_input_prompt: str
    invalid_prompt: str
    # Where the caller goes after ``tries`` timeouts or wrong keys in a row.
    give_up: str
    tries: int | None = Field(None, ge=1, le=10)
    timeout_seconds: float = Field(5.0, gt=0, le=60)

    @field_validator("choices", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 1: as an integer key; a DTMF key is text.
        if isinstance(value, dict):
            return {str(key): choice for key, choice in value.items()}
        return value

    @field_validator("choices")
    @classmethod
    def _dtmf_keys(cls, value: dict[str, Choice]) -> dict[str, Choice]:
        for key in value:
            if key not in DTMF_KEYS:
                raise ValueError(f"choice {key!r} is not a phone key (0-9, * or #)")
        if not value:
            raise ValueError("a menu needs at least one choice")
        return value


class KeypadNumberQuestion(_Model):
    """After the message: the account or line number the complaint is about, keyed and ended
    with #. Skippable: a timeout, or * or # with nothing keyed, and the flow goes on without
    one. Anything else that is not 1 to ``max_digits`` digits is asked again, ``tries`` times
    in all, then the flow goes on without one. A number taken is said back digit by digit
    after ``confirm_prompt``."""

    prompt: str
    invalid_prompt: str
    confirm_prompt: str
    max_digits: int = Field(KEYPAD_DIGITS, ge=1, le=KEYPAD_DIGITS)
    timeout_seconds: float = Field(6.0, gt=0, le=60)
    tries: int = Field(2, ge=1, le=10)


class RecordComplaintNode(_Model):
    type: Literal["record_complaint"]
    prompt: str
    no_message_prompt: str
    registered_prompt: str
    repeat_prompt: str
    promised_prompt: str
    error_prompt: str
    next: str
    give_up: str
    tries: int | None = Field(None, ge=1, le=10)
    max_seconds: int = Field(180, ge=5, le=1800)
    # Seconds of silence that end the message, as if the caller had pressed #.
    silence_seconds: int = Field(5, ge=1, le=60)
    # None: no number is asked for.
    keypad_number: KeypadNumberQuestion | None = None


class CaseStatusNode(_Model):
    type: Literal["case_status"]
    prompt: str
    no_input_prompt: str
    invalid_prompt: str
    last4_prompt: str
    not_found_prompt: str
    # Said when the caller keyed too many references that name no case of theirs (or their
    # number asked too often); then the call ends. None: not_found_prompt is said instead.
    limit_prompt: str | None = None
    promised_prompt: str
    error_prompt: str
    status_prompts: dict[str, str]
    # Statuses for which the promised resolution date is still worth saying.
    say_promised_for: list[str] = Field(default_factory=list)
    next: str
    give_up: str
    tries: int | None = Field(None, ge=1, le=10)
    timeout_seconds: float = Field(8.0, gt=0, le=60)

    @model_validator(mode="after")
    def _every_status_has_a_prompt(self) -> CaseStatusNode:
        missing = [code for code in (*STATUS_CODES, "unknown") if code not in self.status_prompts]
        if missing:
            raise ValueError(f"status_prompts lacks {', '.join(missing)}")
        unknown = [code for code in self.say_promised_for if code not in STATUS_CODES]
        if unknown:
            raise ValueError(f"say_promised_for names unknown status {', '.join(unknown)}")
        return self


class TransferNode(_Model):
    """Leave the IVR for an agent: the dialplan reads HOTLINE_NEXT=agent after AGI returns, and
    plays the flow's ``agents_busy`` prompt when no agent answers."""

    type: Literal["transfer"]
    prompt: str


class HangupNode(_Model):
    type: Literal["hangup"]
    prompt: str


Node = Annotated[
    PlayNode | MenuNode | RecordComplaintNode | CaseStatusNode | TransferNode | HangupNode,
    Field(discriminator="type"),
]
NODE_TYPES = ("play", "menu", "record_complaint", "case_status", "transfer", "hangup")


class Flow(_Model):
    name: str
    start: str
    # How many times a menu or an input is asked before giving up, unless a node says otherwise.
    max_tries: int = Field(3, ge=1, le=10)
    prompts: dict[str, str]
    nodes: dict[str, Node]

    @field_validator("prompts")
    @classmethod
    def _prompt_ids_and_text(cls, value: dict[str, str]) -> dict[str, str]:
        for prompt_id, text in value.items():
            if not PROMPT_ID.match(prompt_id):
                raise ValueError(f"prompt id {prompt_id!r} must be lower-case letters, digits, _")
            if not text.strip():
                raise ValueError(f"prompt {prompt_id!r} has no text")
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> Flow:
        if self.start not in self.nodes:
            raise ValueError(f"start: unknown node {self.start!r}")
        for node_id, node in self.nodes.items():
            for key, target in _node_links(node):
                if target not in self.nodes:
                    raise ValueError(f"nodes.{node_id}.{key}: unknown node {target!r}")
            for key, prompt_id in _node_prompts(node):
                if prompt_id not in self.prompts:
                    raise ValueError(f"nodes.{node_id}.{key}: unknown prompt {prompt_id!r}")
            if isinstance(node, TransferNode) and AGENTS_BUSY_PROMPT not in self.prompts:
                raise ValueError(
                    f"nodes.{node_id}: a transfer needs prompt {AGENTS_BUSY_PROMPT!r} "
                    "(the dialplan plays it when no agent answers)"
                )
        return self

    def tries(self, node: MenuNode | RecordComplaintNode | CaseStatusNode) -> int:
        return node.tries if node.tries is not None else self.max_tries


def _node_links(node: BaseModel) -> list[tuple[str, str]]:
    links = [(key, getattr(node, key)) for key in ("next", "give_up") if hasattr(node, key)]
    if isinstance(node, MenuNode):
        links += [(f"choices.{key}.next", choice.next) for key, choice in node.choices.items()]
    return links


def _node_prompts(node: BaseModel) -> list[tuple[str, str]]:
    prompts = [
        (key, value)
        for key, value in node
        if key == "prompt" or (key.endswith("_prompt") and isinstance(value, str))
    ]
    if isinstance(node, CaseStatusNode):
        prompts += [(f"status_prompts.{code}", p) for code, p in node.status_prompts.items()]
    if isinstance(node, RecordComplaintNode) and node.keypad_number is not None:
        prompts += [(f"keypad_number.{key}", p) for key, p in _node_prompts(node.keypad_number)]
    return prompts


def _describe(error: Any) -> str:
    # A discriminated union puts the node type into the location: drop it, the operator did not
    # write it as a key.
    loc = [str(part) for part in error["loc"]]
    if len(loc) > 2 and loc[0] == "nodes" and loc[2] in NODE_TYPES:
        del loc[2]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"unknown key '{'.'.join(loc)}' (check its spelling)"
    if not loc:
        return message  # cross-reference checks already name their key
    return f"{'.'.join(loc)}: {message}"


def load_flow(path: Path | None = None) -> Flow:
    """Read and validate a flow file (the built-in hotline flow by default)."""
    chosen = path if path is not None else BUILTIN_FLOW
    try:
        data = yaml.safe_load(chosen.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FlowError(f"{chosen}: cannot read ({exc.strerror})") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise FlowError(f"{chosen}{where}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise FlowError(f"{chosen}: the top level must be a mapping")
    try:
        return Flow.model_validate(data)
    except ValidationError as exc:
        # A misspelt key also makes the real key "missing": name the misspelling, it is the cause.
        errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
        raise FlowError(f"{chosen}: {_describe(errors[0])}") from exc
