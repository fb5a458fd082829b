"""deploy.yml: the shipped example loads, every mistake names its field, flags win."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from deploy.config import Settings, load_file, settings, validate
from deploy.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy.example.yml"
FIELDS = [f.name for f in dataclasses.fields(Settings)]


def write(tmp_path: Path, text: str, name: str = "deploy.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_file(write(tmp_path, text))
    assert caught.value.exit_code == 2
    return caught.value.message


# -- the shipped example ------------------------------------------------------------------------


def test_the_example_loads_and_builds_settings() -> None:
    values = load_file(EXAMPLE)
    assert values  # it states some values, not only comments
    current = settings(values, {})
    assert current.compose_file == ROOT / "docker-compose.yml"
    assert current.compose_file.is_file()


def test_the_values_the_example_states_are_the_defaults() -> None:
    defaults = Settings()
    for key, value in load_file(EXAMPLE).items():
        default = getattr(defaults, key)
        if isinstance(default, Path):
            default = (EXAMPLE.parent / default).resolve()
        assert value == default, (
            f"deploy.example.yml says {key}: {value!r}, the default is {default!r}"
        )


def test_the_example_documents_every_setting() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for name in FIELDS:
        assert re.search(rf"^#? ?{name}:", text, re.MULTILINE), f"{name} is not in the example"


def test_the_examples_commented_out_settings_are_valid_too(tmp_path: Path) -> None:
    # Uncommenting any `# key: value` line must give a valid file: the comments are documentation.
    lines = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^# (\w+: .*)$", line)
        if match and match[1].split(":")[0] in FIELDS:
            line = match[1]
        lines.append(line)
    uncommented = write(tmp_path, "\n".join(lines) + "\n")
    values = load_file(uncommented)
    assert set(values) == set(FIELDS)  # every setting appears, commented out or not
    current = settings(values, {})
    assert current.probe_url == "http://127.0.0.1:8000/health"
    assert current.db_path == tmp_path / "data" / "app.db"
    assert current.state == tmp_path / ".litedeploy"


# -- mistakes name the field --------------------------------------------------------------------


def test_an_empty_file_means_the_defaults(tmp_path: Path) -> None:
    assert load_file(write(tmp_path, "# nothing set\n")) == {}
    assert settings({}, {}) == Settings()


def test_an_unknown_key_is_named_and_the_known_ones_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_file(write(tmp_path, "service: app\nhealth_timout: 30\n"))
    assert "health_timout: unknown setting" in caught.value.message
    assert caught.value.hint is not None
    assert "health_timeout" in caught.value.hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("health_timeout: soon\n", "health_timeout: must be int or float (got 'soon')"),
        ("health_timeout: true\n", "health_timeout: must be int or float (got True)"),
        ("stable_seconds: [5]\n", "stable_seconds: must be int or float (got [5])"),
        ("rehearse: 'yes please'\n", "rehearse: must be bool (got 'yes please')"),
        ("service: 12\n", "service: must be str (got 12)"),
        ("compose_file: {a: 1}\n", "compose_file: must be str (got {'a': 1})"),
        ("tag: false\n", "tag: must be str or int or float (got False)"),
    ],
)
def test_a_wrong_type_names_the_field(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in config_error(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("health_timeout: -5\n", "health_timeout: must be a positive number of seconds (got -5)"),
        ("health_timeout: 0\n", "health_timeout: must be a positive number of seconds (got 0)"),
        (
            "stable_seconds: -0.5\n",
            "stable_seconds: must be a positive number of seconds (got -0.5)",
        ),
        # NaN compares false with everything: it must not slip through as "not negative".
        (
            "health_timeout: .nan\n",
            "health_timeout: must be a positive number of seconds (got nan)",
        ),
        (
            "health_timeout: .inf\n",
            "health_timeout: must be a positive number of seconds (got inf)",
        ),
    ],
)
def test_a_timeout_must_be_a_positive_number(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in config_error(tmp_path, text)


def test_compose_must_be_auto_v1_or_v2(tmp_path: Path) -> None:
    message = config_error(tmp_path, "compose: v3\n")
    assert "compose: must be auto, v1 or v2 (got 'v3')" in message
    for good in ("auto", "v1", "v2"):
        assert load_file(write(tmp_path, f"compose: {good}\n")) == {"compose": good}


@pytest.mark.parametrize("url", ["127.0.0.1:8000/health", "ftp://host/x", "/health"])
def test_probe_url_must_be_http(tmp_path: Path, url: str) -> None:
    message = config_error(tmp_path, f"probe_url: {url}\n")
    assert "probe_url: must be an http:// or https:// URL" in message


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    message = config_error(tmp_path, "service: app\nhealth_timeout: 5\n  stable_seconds: 3\n")
    assert "is not valid YAML at line 3" in message
    assert str(tmp_path / "deploy.yml") in message


def test_a_list_instead_of_a_mapping_is_refused(tmp_path: Path) -> None:
    assert "expected a mapping of settings, got list" in config_error(tmp_path, "- service\n")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*nope\.yml: No such file"):
        load_file(tmp_path / "nope.yml")


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yml"
    path.write_bytes(b"service: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_file(path)


def test_null_values_mean_the_default(tmp_path: Path) -> None:
    assert load_file(write(tmp_path, "project:\nprobe_url: null\nservice: web\n")) == {
        "service": "web"
    }


def test_a_numeric_tag_becomes_a_string(tmp_path: Path) -> None:
    # `tag: 2` and `tag: 1.10` are numbers to YAML; the image tag is text.
    assert load_file(write(tmp_path, "tag: 2\n")) == {"tag": "2"}
    assert settings(load_file(write(tmp_path, "tag: '1.10'\n")), {}).tag == "1.10"


# -- paths and precedence -----------------------------------------------------------------------


def test_relative_paths_are_taken_from_the_files_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ops"
    folder.mkdir()
    values = load_file(
        write(
            folder,
            "compose_file: ../stack/docker-compose.yml\n"
            "db_path: ./data/app.db\n"
            "backup_dir: /srv/backups\n"
            "state_dir: state\n",
        )
    )
    assert values == {
        "compose_file": tmp_path / "stack" / "docker-compose.yml",
        "db_path": folder / "data" / "app.db",
        "backup_dir": Path("/srv/backups"),
        "state_dir": folder / "state",
    }
    current = settings(values, {})
    assert current.state == folder / "state"


def test_the_state_folder_defaults_to_beside_the_compose_file(tmp_path: Path) -> None:
    current = settings({"compose_file": tmp_path / "stack" / "docker-compose.yml"}, {})
    assert current.state == tmp_path / "stack" / ".litedeploy"


def test_flags_win_over_the_file_and_unset_flags_do_not(tmp_path: Path) -> None:
    values = load_file(
        write(tmp_path, "service: web\nhealth_timeout: 30\nrehearse: false\ntag: v1\n")
    )
    flags: dict[str, Any] = {
        "service": "api",
        "health_timeout": None,
        "rehearse": True,
        "tag": "v2",
        "compose_file": Path("other.yml"),
        "probe_url": None,
    }
    current = settings(values, flags)
    assert current == Settings(
        service="api",
        health_timeout=30,
        rehearse=True,
        tag="v2",
        compose_file=Path("other.yml"),
    )


def test_flags_are_validated_like_the_file() -> None:
    with pytest.raises(ConfigError, match="health_timeout: must be a positive number"):
        settings({}, {"health_timeout": -1.0})
    with pytest.raises(ConfigError, match="compose: must be auto, v1 or v2"):
        settings({}, {"compose": "v3"})
    with pytest.raises(ConfigError, match="probe_url: must be an http"):
        settings({}, {"probe_url": "localhost:8000"})


def test_validate_names_the_source() -> None:
    with pytest.raises(ConfigError, match=r"^ops/deploy\.yml: colour: unknown setting$"):
        validate({"colour": "blue"}, source="ops/deploy.yml")
