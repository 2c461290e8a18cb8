"""The arrows of docs/architecture.md, read from the code with ``ast``: every
``import`` and ``from ... import`` in every module (also the ones inside functions,
which is where an import cycle hides), relative imports resolved.

Adapters -> domain -> store; the domain imports no web, MQTT, console or database
dialect; the API imports no MQTT and no console; hwsim meets the cloud only through
the wire contract; the firmware imports nothing of the cloud or of hwsim; the API
asks the domain and never queries the database itself."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (where, what it must not import, why). A forbidden name matches itself and its submodules.
RULES = [
    ("firmware", ("cloud", "hwsim", "callcenter"), "the watch runs alone; it meets the cloud on the wire"),
    ("firmware/app", ("machine", "esp32", "network"), "only firmware/hal touches hardware"),
    ("hwsim", ("firmware", "callcenter", "cloud"), "hwsim meets the firmware on the simulated wires "
                                                   "and the cloud on its public interfaces"),
    ("cloud/domain", ("fastapi", "starlette", "paho", "cloud.mqtt", "cloud.api", "cloud.wiring", "callcenter",
                      "sqlalchemy.dialects", "psycopg", "psycopg2", "sqlite3"),
     "the domain knows no web, MQTT, console or database dialect"),
    ("cloud/api", ("paho", "cloud.mqtt", "callcenter", "cloud.wiring"), "the API knows no MQTT and no console"),
    ("cloud/mqtt", ("fastapi", "starlette", "cloud.api", "callcenter", "cloud.wiring"),
     "the MQTT adapter knows no web"),
    ("cloud/gateway", ("fastapi", "starlette", "paho", "cloud.api", "cloud.mqtt", "callcenter", "cloud.wiring"),
     "the watch gateway is an adapter beside MQTT: it knows no web and no MQTT"),
    ("cloud/store", ("cloud.domain", "cloud.api", "cloud.mqtt", "callcenter", "cloud.wiring"),
     "the store is the innermost room"),
    ("cloud/protocol.py", ("cloud", "sqlalchemy", "fastapi", "paho"), "the wire contract stands alone"),
    ("callcenter", ("cloud.store", "cloud.mqtt", "sqlalchemy"), "the console talks to the API, never the database"),
]
# The one exception to "hwsim imports nothing of the cloud": the wire contract itself.
ALLOWED = {"hwsim": ("cloud.protocol",)}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every module name imported anywhere in ``source`` (with its line). ``from a import
    b`` yields ``a.b`` too, since ``b`` may be a module (``from cloud import mqtt``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(where: str) -> list[str]:
    target = ROOT / where
    files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    out = []
    for path in files:
        module = module_name(path)
        for lineno, name in imports_of(path.read_text(), module, path.name == "__init__.py"):
            for rule_where, forbidden, why in RULES:
                if not (where == rule_where and any(matches(name, f) for f in forbidden)):
                    continue
                if any(matches(name, a) for a in ALLOWED.get(rule_where, ())):
                    continue
                out.append(f"{path.relative_to(ROOT)}:{lineno} imports {name} ({why})")
    return out


@pytest.mark.parametrize("where", sorted({r[0] for r in RULES}))
def test_the_arrows_hold(where):
    assert (ROOT / where).exists(), f"{where} is gone: update the rules with the code"
    assert violations(where) == []


def test_the_reader_sees_every_kind_of_import():
    # The checker itself, against imports written every way: a rule that sees nothing proves nothing.
    source = (
        "import paho.mqtt.client as mqtt\n"
        "from cloud import mqtt\n"
        "def late():\n"
        "    from ..mqtt.bridge import MqttBridge\n"
        "    from . import ingest\n"
    )
    names = [name for _, name in imports_of(source, "cloud.domain.cases")]
    assert "paho.mqtt.client" in names
    assert "cloud.mqtt" in names
    assert "cloud.mqtt.bridge" in names and "cloud.mqtt.bridge.MqttBridge" in names
    assert "cloud.domain.ingest" in names
    # In a package's __init__, "." is the package itself.
    assert [n for _, n in imports_of("from .door import Ingestor", "cloud.domain.ingest", True)][0] \
        == "cloud.domain.ingest.door"
    assert not matches("cloud.mqttish", "cloud.mqtt") and matches("cloud.mqtt.bridge", "cloud.mqtt")


def test_the_domain_never_branches_on_the_database():
    # No dialect import is not enough: `session.get_bind().dialect.name == "sqlite"` is dialect
    # code too. It belongs in cloud/store, behind a function the domain calls on any database.
    found = []
    for path in sorted((ROOT / "cloud/domain").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "dialect":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


# The API may name the session's types (its services protocol) but never query: a query
# is the domain's (or the store's), behind a function any adapter can call.
API_MAY_IMPORT = ("sqlalchemy.orm", "sqlalchemy.orm.Session", "sqlalchemy.orm.sessionmaker")
QUERY_METHODS = ("execute", "scalars", "scalar")


def database_queries(source: str, module: str) -> list[str]:
    found = [f"{lineno}: imports {name}" for lineno, name in imports_of(source, module)
             if matches(name, "sqlalchemy") and name not in API_MAY_IMPORT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in QUERY_METHODS:
            found.append(f"{node.lineno}: calls .{node.func.attr}()")
    return found


def test_the_api_asks_the_domain_not_the_database():
    found = []
    for path in sorted((ROOT / "cloud/api").rglob("*.py")):
        found += [f"{path.relative_to(ROOT)}:{f}" for f in database_queries(path.read_text(), module_name(path))]
    assert found == []


def test_the_query_rule_sees_a_query():
    # What list_operators once did in cloud/api/routes.py: the rule must catch it.
    source = (
        "from sqlalchemy.orm import Session\n"
        "def list_operators(request, op):\n"
        "    from sqlalchemy import select\n"
        "    with services(request).sm() as s:\n"
        "        return list(s.scalars(select(Operator).where(Operator.tenant_id == op.tenant_id)))\n"
    )
    assert database_queries(source, "cloud.api.routes") == ["3: imports sqlalchemy", "3: imports sqlalchemy.select",
                                                            "5: calls .scalars()"]
