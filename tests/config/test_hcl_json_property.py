"""Property: any config written as HCL and as JSON loads to the same model."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consulpy.config import load_agent_config

from .conftest import settings as model_settings

_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
_NAME = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
_DURATION = st.sampled_from(["0", "10s", "1m30s", "250ms", "1h", "1.5s", "72h"])


def hcl_string(value: str) -> str:
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    text = "".join(out).replace("${", "$${").replace("%{", "%%{")
    return f'"{text}"'


def hcl_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(hcl_value(v) for v in value) + "]"
    raise TypeError(value)


def hcl_body(doc: dict[str, Any], indent: str = "") -> str:
    lines = []
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key} {{")
            lines.append(hcl_body(value, indent + "  "))
            lines.append(f"{indent}}}")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            singular = {"services": "service", "checks": "check"}[key]
            for item in value:
                lines.append(f"{indent}{singular} {{")
                lines.append(hcl_body(item, indent + "  "))
                lines.append(f"{indent}}}")
        else:
            lines.append(f"{indent}{key} = {hcl_value(value)}")
    return "\n".join(lines)


_SERVICE = st.fixed_dictionaries(
    {"name": _NAME},
    optional={
        "port": st.integers(1, 65535),
        "tags": st.lists(_TEXT, max_size=3),
        "meta": st.dictionaries(_NAME, _TEXT, max_size=3),
        "enable_tag_override": st.booleans(),
        "address": _TEXT,
    },
)

_DOC = st.fixed_dictionaries(
    {},
    optional={
        "datacenter": _NAME,
        "node_name": _TEXT.filter(str.strip),
        "server": st.booleans(),
        "log_level": st.sampled_from(["trace", "DEBUG", "info", "Warn", "err"]),
        "retry_join": st.lists(_NAME, max_size=3),
        "retry_interval": _DURATION,
        "session_ttl_min": _DURATION,
        "node_meta": st.dictionaries(
            _NAME.filter(lambda k: not k.startswith("consul-")), _TEXT, max_size=4
        ),
        "ports": st.fixed_dictionaries(
            {}, optional={k: st.integers(-1, 65535) for k in ("http", "dns", "grpc")}
        ),
        "telemetry": st.fixed_dictionaries(
            {}, optional={"metrics_prefix": _TEXT, "prometheus_retention_time": _DURATION}
        ),
        "services": st.lists(_SERVICE, min_size=1, max_size=3),
    },
)


# CONSULPY_CONFIG_EXAMPLES=2000 runs a long sweep; CI runs a quick one.
@settings(
    max_examples=int(os.environ.get("CONSULPY_CONFIG_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(doc=_DOC)
def test_hcl_and_json_agree(doc, tmp_path):
    ports = doc.get("ports", {})
    listeners = [ports.get("http", 8500), ports.get("dns", 8600), ports.get("grpc", -1)]
    used = [p for p in listeners if p > 0]
    if len(set(used)) != len(used):
        return  # colliding listener ports are (correctly) rejected; not this property
    data_dir = str(tmp_path)
    base = ["-data-dir", data_dir]
    hcl_path = tmp_path / "c.hcl"
    json_path = tmp_path / "c.json"
    hcl_path.write_text(hcl_body(doc) + "\n", encoding="utf-8")
    json_path.write_text(json.dumps(doc), encoding="utf-8")
    from_hcl = load_agent_config([*base, "-config-file", str(hcl_path)])
    from_json = load_agent_config([*base, "-config-file", str(json_path)])
    assert model_settings(from_hcl) == model_settings(from_json)
    if "node_meta" in doc:
        assert from_hcl.node_meta == doc["node_meta"]
    for svc, loaded in zip(doc.get("services", []), from_hcl.services, strict=True):
        assert loaded["Name"] == svc["name"]
        assert loaded.get("Tags", []) == svc.get("tags", [])
        assert loaded.get("Meta", {}) == svc.get("meta", {})
