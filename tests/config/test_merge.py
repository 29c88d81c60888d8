"""Merge order: defaults < -dev < files (in order; dirs lexically) < extra < flags < -hcl."""

from __future__ import annotations

import pytest

from consulpy.config import ConfigError, load_agent_config, load_config_files


def test_dir_files_load_in_lexical_order_and_later_wins(write, tmp_path, load):
    write("conf/20-b.hcl", 'datacenter = "second"\nretry_join = ["b"]\n')
    write("conf/10-a.json", '{"datacenter": "first", "node_name": "n-a", "retry_join": ["a"]}')
    write("conf/30-c.hcl", 'retry_join = ["c"]\n')
    cfg = load("-config-dir", str(tmp_path / "conf"))
    assert cfg.datacenter == "second"
    assert cfg.node_name == "n-a"
    assert cfg.retry_join == ["a", "b", "c"]
    assert [p.rsplit("/", 1)[1] for p in cfg.config_files] == ["10-a.json", "20-b.hcl", "30-c.hcl"]


def test_dir_skips_other_files_and_subdirectories_with_a_warning(write, tmp_path, load):
    write("conf/a.hcl", 'datacenter = "ok"\n')
    write("conf/README.md", "not config")
    write("conf/sub/z.hcl", 'datacenter = "from-subdir"\n')
    cfg = load("-config-dir", str(tmp_path / "conf"))
    assert cfg.datacenter == "ok"
    assert any("skipping file" in w and "README.md" in w for w in cfg.warnings)


def test_config_format_forces_every_file_in_a_dir(write, tmp_path, load):
    write("conf/settings.conf", '{"datacenter": "forced"}')
    cfg = load("-config-format=json", "-config-dir", str(tmp_path / "conf"))
    assert cfg.datacenter == "forced"


def test_file_without_extension_needs_config_format(write, load):
    path = write("agent.conf", 'datacenter = "x"\n')
    with pytest.raises(ConfigError, match="unknown extension"):
        load("-config-file", path)
    assert load("-config-format", "hcl", "-config-file", path).datacenter == "x"


def test_config_files_and_dirs_apply_in_the_order_given(write, tmp_path, load):
    write("dir/a.hcl", 'datacenter = "from-dir"\n')
    single = write("single.hcl", 'datacenter = "from-file"\n')
    assert load("-config-dir", str(tmp_path / "dir"), "-config-file", single).datacenter == (
        "from-file"
    )
    assert load("-config-file", single, "-config-dir", str(tmp_path / "dir")).datacenter == (
        "from-dir"
    )


def test_flags_win_over_files_and_extra_sources(write, load):
    path = write("a.hcl", 'datacenter = "file"\nnode_name = "file-node"\nports { http = 1 }\n')
    cfg = load(
        "-config-file",
        path,
        "-datacenter",
        "flag",
        "-http-port=2",
        extra=[{"datacenter": "extra", "node_name": "extra-node"}],
    )
    assert cfg.datacenter == "flag"
    assert cfg.node_name == "extra-node"  # extra beats files, flag not given
    assert cfg.ports.http == 2


def test_hcl_fragments_win_over_flags(load):
    cfg = load("-hcl", 'datacenter = "hcl"', "-datacenter=flag", "-hcl", 'log_level = "err"')
    assert cfg.datacenter == "hcl"
    assert cfg.log_level == "error"


def test_lists_concatenate_with_flag_items_first_as_in_consul(write, load):
    a = write("a.hcl", 'retry_join = ["file-a"]\nrecursors = ["1.1.1.1"]\n')
    b = write("b.json", '{"retry_join": ["file-b"], "start_join": ["s-file"]}')
    cfg = load(
        "-config-file",
        a,
        "-config-file",
        b,
        "-retry-join",
        "flag-1",
        "-retry-join=flag-2",
        "-join",
        "s-flag",
        "-recursor",
        "8.8.8.8",
        extra=[{"retry_join": ["extra"]}],
    )
    assert cfg.retry_join == ["flag-1", "flag-2", "file-a", "file-b", "extra"]
    assert cfg.start_join == ["s-flag", "s-file"]
    assert cfg.recursors == ["8.8.8.8", "1.1.1.1"]


def test_services_and_checks_concatenate_across_files(write, load):
    a = write("a.hcl", 'service {\n name = "a"\n}\ncheck {\n id = "c1"\n ttl = "5s"\n}\n')
    b = write("b.json", '{"service": {"name": "b"}, "services": [{"name": "c"}]}')
    cfg = load("-config-file", a, "-config-file", b)
    assert [s["Name"] for s in cfg.services] == ["a", "c", "b"]
    assert cfg.checks == [{"ID": "c1", "TTL": "5s"}]


def test_maps_merge_key_wise_and_structs_field_wise(write, load):
    a = write("a.hcl", 'node_meta {\n a = "1"\n b = "1"\n}\nports {\n http = 1111\n}\n')
    b = write("b.hcl", 'node_meta {\n b = "2"\n c = "2"\n}\nports {\n dns = 2222\n}\n')
    cfg = load("-config-file", a, "-config-file", b, "-node-meta", "d:4")
    assert cfg.node_meta == {"a": "1", "b": "2", "c": "2", "d": "4"}
    assert (cfg.ports.http, cfg.ports.dns, cfg.ports.server) == (1111, 2222, 8300)


def test_new_tls_layout_and_legacy_keys_resolve_the_same(write, load):
    legacy = write(
        "legacy.hcl",
        'ca_file = "/ca.pem"\ncert_file = "/c.pem"\nkey_file = "/k.pem"\n'
        "verify_incoming = true\nverify_outgoing = true\nverify_server_hostname = true\n",
    )
    modern = write(
        "modern.hcl",
        'tls {\n defaults {\n  ca_file = "/ca.pem"\n  cert_file = "/c.pem"\n'
        '  key_file = "/k.pem"\n  verify_incoming = true\n  verify_outgoing = true\n }\n'
        " internal_rpc {\n  verify_server_hostname = true\n }\n"
        " grpc {\n  verify_incoming = false\n }\n}\n",
    )
    old, new = load("-config-file", legacy), load("-config-file", modern)
    assert old.tls == new.tls
    assert old.tls.verify_incoming and old.tls.verify_server_hostname and old.tls.enabled
    assert not old.tls.grpc.verify_incoming  # legacy verify_incoming never applied to gRPC
    assert any("'verify_incoming' field is deprecated" in w for w in old.warnings)


def test_internal_rpc_overrides_tls_defaults(write, load):
    path = write(
        "t.json",
        '{"tls": {"defaults": {"ca_file": "/d.pem", "verify_outgoing": true},'
        ' "internal_rpc": {"ca_file": "/rpc.pem"}, "https": {"verify_outgoing": false}}}',
    )
    tls = load("-config-file", path).tls
    assert tls.ca_file == "/rpc.pem" and tls.verify_outgoing
    assert tls.https.ca_file == "/d.pem" and not tls.https.verify_outgoing


def test_deprecated_acl_and_ui_keys_are_translated(write, load):
    path = write(
        "old.json",
        '{"acl_datacenter": "dc9", "acl_default_policy": "deny", "acl_master_token": "m",'
        ' "acl_agent_token": "a", "ui": true, "ui_content_path": "/console"}',
    )
    cfg = load("-config-file", path)
    assert cfg.primary_datacenter == "dc9"
    assert cfg.acl.enabled and cfg.acl.default_policy == "deny"
    assert cfg.acl.tokens == {"initial_management": "m", "agent": "a"}
    assert cfg.ui and cfg.ui_config.content_path == "/console/"
    assert sum("deprecated" in w for w in cfg.warnings) == 6


def test_current_key_wins_over_deprecated_one_in_the_same_file(write, load):
    path = write("t.hcl", 'acl_token = "old"\nacl {\n tokens {\n  default = "new"\n }\n}\n')
    assert load("-config-file", path).acl.tokens == {"default": "new"}


def test_extra_sources_accept_seconds_for_durations(load):
    cfg = load(extra=[{"session_ttl_min": 0.5, "retry_interval": "2s"}])
    assert (cfg.session_ttl_min, cfg.retry_interval) == (0.5, 2.0)


def test_keys_match_case_insensitively_like_consul(write, load):
    path = write("c.json", '{"Datacenter": "upper", "Ports": {"HTTP": 1}}')
    cfg = load("-config-file", path)
    assert (cfg.datacenter, cfg.ports.http) == ("upper", 1)


def test_load_config_files_returns_parsed_sources_in_order(write, tmp_path):
    write("d/b.hcl", "server = true\n")
    write("d/a.json", '{"server": false}')
    one = write("x.hcl", "ports {\n http = 1\n}\n")
    sources = load_config_files([str(tmp_path / "d"), one])
    assert [s.name.rsplit("/", 1)[1] for s in sources] == ["a.json", "b.hcl", "x.hcl"]
    assert sources[2].data == {"ports": {"http": 1}}


def test_missing_path_is_an_error_naming_it(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(ConfigError, match=f"Error reading {missing}: no such file"):
        load_agent_config(["-dev", "-config-dir", missing])
