"""The package as a user gets it: its error codes, its types, its documentation and example, and
the cross-language protocol test vectors."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tally_client
from tally_client import ErrorCode, _native

from conftest import REPOSITORY, Server

PACKAGE = Path(tally_client.__file__).parent
BINDING = REPOSITORY / "bindings" / "python"
EXAMPLE = BINDING / "examples" / "minimal.py"
DOC = REPOSITORY / "docs" / "sdk" / "python.md"


def test_the_protocol_test_vectors_hold() -> None:
    text = (REPOSITORY / "docs" / "sdk" / "test-vectors.json").read_text(encoding="utf-8")
    checked = tally_client.check_test_vectors(text)
    assert checked > 0


def test_broken_test_vectors_are_reported() -> None:
    with pytest.raises(tally_client.TallyError):
        tally_client.check_test_vectors("{ not json")


def test_error_codes_are_the_stable_table() -> None:
    table = _native.error_codes()
    assert [(c.value, c.stable_name) for c in ErrorCode] == [(code, name) for code, name, _, _ in table]
    warnings = {ErrorCode(code) for code, _, severity, _ in table if severity == "warning"}
    assert warnings == {ErrorCode.CACHED_GRANT_USED, ErrorCode.LICENSE_IN_GRACE}


def test_exceptions_keep_their_code_when_pickled() -> None:
    import pickle

    e = tally_client.errors._from_native(132, "seats_exhausted", "every seat is taken", 132)
    assert isinstance(e, tally_client.RefusedError)
    copy = pickle.loads(pickle.dumps(e))
    assert (type(copy), copy.code, copy.name, copy.message, copy.server_code) == (
        tally_client.RefusedError,
        ErrorCode.SEATS_EXHAUSTED,
        "seats_exhausted",
        "every seat is taken",
        132,
    )
    assert str(copy) == "132 seats_exhausted: every seat is taken"


def test_the_package_is_typed_and_its_stub_covers_the_native_module() -> None:
    assert (PACKAGE / "py.typed").is_file()
    stub = ast.parse((PACKAGE / "_native.pyi").read_text(encoding="utf-8"))
    declared: dict[str, set[str]] = {"": set()}
    for node in stub.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            declared[""].add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            declared[""].add(node.target.id)
        if isinstance(node, ast.ClassDef):
            declared[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    public = {n for n in dir(_native) if not n.startswith("_")}
    assert public == declared[""]
    methods = {n for n in dir(_native.NativeClient) if not n.startswith("_")}
    assert methods == declared["NativeClient"] - {"__init__"}
    # Every public name of the package is documented.
    for name in tally_client.__all__:
        item = getattr(tally_client, name)
        if inspect.isclass(item) or inspect.isfunction(item):
            assert inspect.getdoc(item), f"{name} has no docstring"


def doc_example() -> str:
    """The code block the Python page quotes the example in."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- bindings/python/examples/minimal\.py -->\n```python\n(.*?)```", text, re.DOTALL
    )
    assert found, f"{DOC} has no python block after <!-- bindings/python/examples/minimal.py -->"
    return found.group(1)


def test_the_documentation_quotes_the_example_as_it_is() -> None:
    assert doc_example() == EXAMPLE.read_text(encoding="utf-8")


def test_the_example_runs_against_the_server(server: Server, tmp_path: Path) -> None:
    before = server.usage("scan")
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), str(server.client_config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "licensed until" in run.stdout, run.stdout
    assert "usage reports waiting for a server: 0" in run.stdout, run.stdout
    assert (tmp_path / "example-device").is_dir()
    assert server.usage("scan") == before + 3


@pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None, reason="mypy is not installed (pip install mypy)"
)
def test_the_example_and_the_tests_type_check_strictly() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", os.devnull]
        + [str(EXAMPLE), str(BINDING / "tests")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MYPYPATH": str(BINDING / "tests")},
    )
    assert run.returncode == 0, run.stdout + run.stderr
