"""Every code the service can answer is in the documented table."""

from __future__ import annotations

from pathlib import Path

from commonid.problems import PROBLEM_TYPES
from jpki.documents import DocumentReason
from jpki.validation import ReasonCode

DOCS = Path(__file__).resolve().parents[2] / "docs" / "service.md"


def test_every_validation_reason_has_a_problem_code() -> None:
    for reason in ReasonCode:
        if reason is not ReasonCode.VALID:
            assert f"certificate_{reason.value}" in PROBLEM_TYPES


def test_every_document_verdict_has_a_problem_code() -> None:
    for reason in DocumentReason:
        if reason is not DocumentReason.VALID:
            assert f"document_{reason.value}" in PROBLEM_TYPES


def test_every_problem_code_is_documented_with_its_status() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for code, (status, _title) in PROBLEM_TYPES.items():
        assert f"| `{code}` | {status} |" in docs, code


def test_openapi_describes_every_error_as_a_problem_document(service_client) -> None:
    openapi = service_client.get("/openapi.json").json()
    schema = openapi["components"]["schemas"]["ProblemDocument"]
    assert sorted(schema["properties"]["code"]["enum"]) == sorted(PROBLEM_TYPES)
    reference = "#/components/schemas/ProblemDocument"
    for path, operations in openapi["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("4XX", "5XX"):
                content = responses[status]["content"]
                assert content["application/problem+json"]["schema"]["$ref"] == reference
            # Not FastAPI's validation-error shape: the API never answers with it.
            assert "422" not in responses, (method, path)


def _raised_codes() -> dict[str, str]:
    """Every code the service passes to ``Problem(...)``: string literals, and module-level
    string constants named there (NO_CHECKPOINT = "audit_no_checkpoint")."""
    import ast

    codes: dict[str, str] = {}
    for path in (DOCS.parents[1] / "commonid").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Problem"
                and node.args
            ):
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    codes[first.value] = f"{path.name}:{node.lineno}"
                elif isinstance(first, ast.Name) and first.id in constants:
                    codes[constants[first.id]] = f"{path.name}:{node.lineno}"
    return codes


def test_every_code_the_service_raises_is_a_listed_problem_code() -> None:
    raised = _raised_codes()
    assert "audit_bad_tree_size" in raised  # the scan sees codes named by a constant
    unlisted = {code: where for code, where in raised.items() if code not in PROBLEM_TYPES}
    assert unlisted == {}
