"""Flow files: the built-in flow loads; each kind of mistake is one line naming file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr_flows.backend import STATUS_CODES
from ivr_flows.flow import BUILTIN_FLOW, FlowError, MenuNode, load_flow


def builtin() -> dict[str, Any]:
    data = yaml.safe_load(BUILTIN_FLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def load_error(tmp_path: Path, data: dict[str, Any] | str) -> str:
    path = tmp_path / "flow.yaml"
    text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FlowError) as caught:
        load_flow(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_the_builtin_flow_has_the_main_menu_and_arabic_prompts() -> None:
    flow = load_flow()
    menu = flow.nodes["main_menu"]
    assert isinstance(menu, MenuNode)
    assert {key: choice.next for key, choice in menu.choices.items()} == {
        "1": "category_menu",
        "2": "case_status",
        "0": "agent",
    }
    assert flow.tries(menu) == 3
    assert all(any("\u0600" <= ch <= "\u06ff" for ch in text) for text in flow.prompts.values())


def test_a_misspelt_key_names_it(tmp_path: Path) -> None:
    data = builtin()
    data["nodes"]["main_menu"]["invalid_promt"] = data["nodes"]["main_menu"].pop("invalid_prompt")
    assert load_error(tmp_path, data) == (
        "unknown key 'nodes.main_menu.invalid_promt' (check its spelling)"
    )


def test_an_unknown_node_is_named(tmp_path: Path) -> None:
    data = builtin()
    data["nodes"]["main_menu"]["choices"]["1"]["next"] = "categry_menu"
    assert load_error(tmp_path, data) == (
        "nodes.main_menu.choices.1.next: unknown node 'categry_menu'"
    )


def test_an_unknown_prompt_is_named(tmp_path: Path) -> None:
    data = builtin()
    data["nodes"]["welcome"]["prompt"] = "welcom"
    assert load_error(tmp_path, data) == "nodes.welcome.prompt: unknown prompt 'welcom'"


def test_an_unknown_start_is_named(tmp_path: Path) -> None:
    data = builtin()
    data["start"] = "hello"
    assert load_error(tmp_path, data) == "start: unknown node 'hello'"


def test_every_status_needs_a_prompt(tmp_path: Path) -> None:
    data = builtin()
    del data["nodes"]["case_status"]["status_prompts"]["escalated"]
    assert load_error(tmp_path, data) == "nodes.case_status: status_prompts lacks escalated"
    assert "escalated" in STATUS_CODES


def test_a_menu_key_must_be_a_phone_key(tmp_path: Path) -> None:
    data = builtin()
    data["nodes"]["main_menu"]["choices"]["x"] = {"next": "agent"}
    assert load_error(tmp_path, data) == (
        "nodes.main_menu.choices: choice 'x' is not a phone key (0-9, * or #)"
    )


def test_an_unknown_node_type_is_named(tmp_path: Path) -> None:
    data = builtin()
    data["nodes"]["welcome"]["type"] = "playback"
    assert load_error(tmp_path, data).startswith("nodes.welcome: Input tag 'playback'")


def test_a_wrong_value_is_named(tmp_path: Path) -> None:
    data = builtin()
    data["nodes"]["main_menu"]["tries"] = 0
    assert load_error(tmp_path, data).startswith("nodes.main_menu.tries: ")


def test_a_bad_prompt_id_is_named(tmp_path: Path) -> None:
    data = builtin()
    data["prompts"]["Welcome Prompt"] = "مرحباً"
    assert load_error(tmp_path, data).startswith("prompts: prompt id 'Welcome Prompt'")


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text("name: hotline\nnodes: [\n", encoding="utf-8")
    with pytest.raises(FlowError, match=r"^.*flow.yaml line 3: not valid YAML \(ParserError\)$"):
        load_flow(path)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="cannot read"):
        load_flow(tmp_path / "none.yaml")


def test_a_transfer_needs_the_prompt_the_dialplan_plays_when_no_agent_answers(
    tmp_path: Path,
) -> None:
    data = builtin()
    del data["prompts"]["agents_busy"]
    assert load_error(tmp_path, data) == (
        "nodes.agent: a transfer needs prompt 'agents_busy' (the dialplan plays it when no agent "
        "answers)"
    )


def test_an_unknown_prompt_of_the_keypad_number_question_is_named(tmp_path: Path) -> None:
    data = builtin()
    data["nodes"]["new_complaint"]["keypad_number"]["confirm_prompt"] = "account_confirmed"
    assert load_error(tmp_path, data) == (
        "nodes.new_complaint.keypad_number.confirm_prompt: unknown prompt 'account_confirmed'"
    )


def test_a_keypad_number_longer_than_the_case_stores_is_refused(tmp_path: Path) -> None:
    data = builtin()
    data["nodes"]["new_complaint"]["keypad_number"]["max_digits"] = 21
    assert load_error(tmp_path, data) == (
        "nodes.new_complaint.keypad_number.max_digits: Input should be less than or equal to 20"
    )
