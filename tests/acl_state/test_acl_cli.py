"""`consulpy acl ...` against a real `consulpy agent -dev` process with ACLs on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acl_state.test_acl_jwt import PUB
from tests.cli.agentproc import AgentProcess, consulpy
from tests.cluster.harness import eventually

MGMT = "5c0ffee0-0000-4000-8000-00000000abcd"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    data_dir = tmp_path_factory.mktemp("acl-cli")
    proc = AgentProcess(
        "-dev",
        "-node=acl-cli",
        "-http-port=0",
        "-dns-port=-1",
        "-grpc-port=-1",
        "-serf-lan-port=0",
        "-serf-wan-port=0",
        "-server-port=0",
        f"-data-dir={data_dir}",
        f"-hcl=acl {{ enabled = true enable_token_persistence = true "
        f'tokens {{ initial_management = "{MGMT}" }} }}',
    ).start()
    try:
        yield proc
    finally:
        proc.kill()


def acl(agent: AgentProcess, *args: str, env: dict[str, str] | None = None, token: bool = True):
    base = [f"-http-addr={agent.http_addr}"]
    if token:
        base.append(f"-token={MGMT}")
    sub = list(args)
    # flags go after the subcommand words
    words = [a for a in sub if not a.startswith("-")][:2] if sub[0] != "bootstrap" else sub[:1]
    rest = sub[len(words) :]
    return consulpy("acl", *words, *base, *rest, env=env)


def test_token_sources_and_bootstrap(agent: AgentProcess, tmp_path: Path) -> None:
    def ready() -> bool:
        out = acl(agent, "token", "read", "-self", "-format=json")
        return out.returncode == 0

    eventually(ready, what="management token")
    out = acl(agent, "token", "read", "-self", "-format=json")
    assert json.loads(out.stdout)["SecretID"] == MGMT
    token_file = tmp_path / "tok"
    token_file.write_text(MGMT + "\n")
    for env, flags in [
        ({"CONSUL_HTTP_TOKEN": MGMT}, []),
        ({"CONSUL_HTTP_TOKEN_FILE": str(token_file)}, []),
        ({}, [f"-token-file={token_file}"]),
    ]:
        out = consulpy(
            "acl", "token", "read", f"-http-addr={agent.http_addr}", "-self", *flags, env=env
        )
        assert out.returncode == 0, out.stderr
        assert f"SecretID:         {MGMT}" in out.stdout
    out = consulpy("acl", "token", "read", f"-http-addr={agent.http_addr}", "-self", "-token=x")
    assert out.returncode == 1 and "ACL not found" in out.stderr
    out = acl(agent, "bootstrap")
    assert out.returncode == 1 and "ACL bootstrap no longer allowed" in out.stderr


def test_policy_role_token_lifecycle(agent: AgentProcess, tmp_path: Path) -> None:
    rules = tmp_path / "rules.hcl"
    rules.write_text('key_prefix "app/" { policy = "write" }\n')
    out = acl(agent, "policy", "create", "-name=app", f"-rules=@{rules}", "-format=json")
    assert out.returncode == 0, out.stderr
    policy = json.loads(out.stdout)
    assert policy["Rules"] == rules.read_text()
    out = acl(agent, "policy", "read", "-name=app")
    assert "Name:         app" in out.stdout and 'key_prefix "app/"' in out.stdout
    out = acl(agent, "policy", "update", f"-id={policy['ID']}", "-description=d")
    assert out.returncode == 0 and "Description:  d" in out.stdout
    out = acl(agent, "role", "create", "-name=r1", "-policy-name=app", "-format=json")
    role = json.loads(out.stdout)
    assert role["Policies"] == [{"ID": policy["ID"], "Name": "app"}]
    out = acl(
        agent,
        "token",
        "create",
        "-description=cli",
        "-role-name=r1",
        "-service-identity=web:dc1",
        "-format=json",
    )
    assert out.returncode == 0, out.stderr
    token = json.loads(out.stdout)
    assert token["Roles"][0]["Name"] == "r1"
    assert token["ServiceIdentities"] == [{"ServiceName": "web", "Datacenters": ["dc1"]}]
    out = acl(agent, "token", "update", f"-id={token['AccessorID']}", "-description=new")
    assert out.returncode == 0 and "Description:      new" in out.stdout
    assert "Roles:" in out.stdout  # kept by the update
    out = acl(agent, "token", "clone", f"-id={token['AccessorID']}", "-format=json")
    clone = json.loads(out.stdout)
    out = acl(agent, "token", "list", "-format=json")
    listed = {t["AccessorID"] for t in json.loads(out.stdout)}
    assert {token["AccessorID"], clone["AccessorID"]} <= listed
    for accessor in (token["AccessorID"], clone["AccessorID"]):
        out = acl(agent, "token", "delete", f"-id={accessor}")
        assert out.returncode == 0 and "deleted successfully" in out.stdout
    out = acl(agent, "token", "read", f"-id={token['AccessorID']}")
    assert out.returncode == 1 and "ACL not found" in out.stderr
    assert acl(agent, "role", "delete", "-name=r1").returncode == 0
    assert acl(agent, "policy", "delete", f"-id={policy['ID']}").returncode == 0
    out = acl(agent, "policy", "create", "-name=bad name")
    assert out.returncode == 1 and "Invalid Policy: invalid Name" in out.stderr


def test_auth_method_binding_rule_and_agent_token(agent: AgentProcess) -> None:
    out = acl(
        agent,
        "auth-method",
        "create",
        "-name=jwt",
        "-type=jwt",
        "-config=" + json.dumps({"BoundIssuer": "me", "JWTValidationPubKeys": [PUB]}),
        "-format=json",
    )
    assert out.returncode == 0, out.stderr
    out = acl(
        agent,
        "binding-rule",
        "create",
        "-method=jwt",
        "-bind-type=service",
        "-bind-name=web",
        "-format=json",
    )
    assert out.returncode == 0, out.stderr
    rule = json.loads(out.stdout)
    out = acl(agent, "binding-rule", "list", "-method=jwt", "-format=json")
    assert [r["ID"] for r in json.loads(out.stdout)] == [rule["ID"]]
    assert acl(agent, "auth-method", "delete", "-name=jwt").returncode == 0
    out = consulpy(
        "acl", "set-agent-token", f"-http-addr={agent.http_addr}", f"-token={MGMT}", "agent", "t1"
    )
    assert out.returncode == 0 and "ACL token set successfully" in out.stdout


def test_login_and_logout(agent: AgentProcess, tmp_path: Path) -> None:
    from tests.acl_state.test_acl_jwt import token

    config = {"JWTValidationPubKeys": [PUB], "ClaimMappings": {"service": "service"}}
    out = acl(
        agent, "auth-method", "create", "-name=wl", "-type=jwt", f"-config={json.dumps(config)}"
    )
    assert out.returncode == 0, out.stderr
    out = acl(
        agent,
        "binding-rule",
        "create",
        "-method=wl",
        "-bind-type=service",
        "-bind-name=${value.service}",
    )
    assert out.returncode == 0, out.stderr
    bearer = tmp_path / "jwt"
    bearer.write_text(token())
    sink = tmp_path / "token"
    out = consulpy(
        "login",
        f"-http-addr={agent.http_addr}",
        "-method=wl",
        f"-bearer-token-file={bearer}",
        f"-token-sink-file={sink}",
    )
    assert out.returncode == 0, out.stderr
    out = consulpy(
        "acl", "token", "read", f"-http-addr={agent.http_addr}", f"-token-file={sink}", "-self"
    )
    assert out.returncode == 0 and "Auth Method:      wl" in out.stdout
    assert "web (Datacenters: all)" in out.stdout
    out = consulpy("logout", f"-http-addr={agent.http_addr}", f"-token-file={sink}")
    assert out.returncode == 0, out.stderr
    out = consulpy(
        "acl", "token", "read", f"-http-addr={agent.http_addr}", f"-token-file={sink}", "-self"
    )
    assert out.returncode == 1 and "ACL not found" in out.stderr
