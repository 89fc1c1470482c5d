"""cluster.kubeconfig: every kubeconfig form a node has, the service account, the errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from multinet.cluster import kubeconfig
from multinet.cluster.kubeconfig import Endpoint, load, needs_full_client
from multinet.cni.errors import ClusterError

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def write(
    tmp_path: Path,
    cluster: dict[str, Any],
    user: dict[str, Any] | None = None,
    *,
    as_yaml: bool = False,
    name: str = "kubeconfig",
) -> str:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [
            {"name": "other", "context": {"cluster": "missing", "user": "missing"}},
            {"name": "ctx", "context": {"cluster": "c", "user": "u"}},
        ],
        "current-context": "ctx",
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if as_yaml else json.dumps(doc))
    return str(path)


def error(path: str) -> ClusterError:
    with pytest.raises(ClusterError) as info:
        load(path)
    assert info.value.code == 101
    return info.value


@pytest.mark.parametrize("as_yaml", [False, True], ids=["json", "yaml"])
def test_token_and_ca_file(tmp_path: Path, as_yaml: bool) -> None:
    (tmp_path / "ca.crt").write_bytes(PEM)
    path = write(
        tmp_path,
        {"server": "https://10.0.0.1:6443/", "certificate-authority": str(tmp_path / "ca.crt")},
        {"token": "t0k"},
        as_yaml=as_yaml,
    )
    assert load(path) == Endpoint(
        server="https://10.0.0.1:6443",
        source=f"kubeconfig {path}",
        ca_file=str(tmp_path / "ca.crt"),
        token="t0k",
    )


def test_relative_paths_resolve_against_the_kubeconfig_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc"
    (conf / "pki").mkdir(parents=True)
    for name in ("ca.crt", "client.crt", "client.key", "token"):
        (conf / "pki" / name).write_text("x\n")
    path = write(
        conf,
        {"server": "https://h:6443", "certificate-authority": "pki/ca.crt"},
        {"client-certificate": "pki/client.crt", "client-key": "pki/client.key"},
    )
    monkeypatch.chdir(tmp_path)  # not the kubeconfig's directory
    ep = load(path)
    assert (ep.ca_file, ep.cert_file, ep.key_file) == (
        str(conf / "pki/ca.crt"),
        str(conf / "pki/client.crt"),
        str(conf / "pki/client.key"),
    )


def test_inline_data_is_decoded(tmp_path: Path) -> None:
    b64 = base64.b64encode
    path = write(
        tmp_path,
        {"server": "https://h", "certificate-authority-data": b64(PEM).decode()},
        {"client-certificate-data": b64(b"CERT").decode(), "client-key-data": b64(b"KEY").decode()},
    )
    ep = load(path)
    assert (ep.ca_data, ep.cert_data, ep.key_data) == (PEM, b"CERT", b"KEY")


def test_token_file_is_read_on_each_load_and_wins_over_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    path = write(tmp_path, {"server": "https://h"}, {"token": "static", "tokenFile": "token"})
    assert (load(path).token, load(path).token_file) == ("first", str(token))
    token.write_text("rotated\n")  # a projected service-account token rotates
    assert load(path).token == "rotated"


def test_an_inline_token_is_trimmed(tmp_path: Path) -> None:
    path = write(tmp_path, {"server": "https://h"}, {"token": " t2\n"})
    assert (load(path).token, load(path).token_file) == ("t2", "")


@pytest.mark.parametrize("text", ["two\nlines", "with space", "caf\u00e9", "nul\x00"])
def test_a_token_no_header_can_carry_is_refused_without_quoting_it(
    tmp_path: Path, text: str
) -> None:
    (tmp_path / "token").write_text(text)
    for user in ({"token": text}, {"tokenFile": "token"}):
        e = error(write(tmp_path, {"server": "https://h"}, user))
        assert "not a bearer token" in e.details and text not in str(e) + e.details


def test_the_files_the_credentials_come_from(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"server": "https://h", "certificate-authority": "ca.crt"},
        {"tokenFile": "t", "client-certificate": "c.crt", "client-key": "c.key"},
    )
    assert kubeconfig.files(path) == (
        path,
        *(str(tmp_path / n) for n in ("t", "c.crt", "c.key", "ca.crt")),
    )
    assert kubeconfig.files(str(tmp_path / "absent")) == (str(tmp_path / "absent"),)
    assert kubeconfig.files("", "/sa") == ("/sa/token", "/sa/ca.crt")


@pytest.mark.parametrize("value", [True, "true"])
def test_insecure_skip_tls_verify(tmp_path: Path, value: object) -> None:
    path = write(tmp_path, {"server": "https://h", "insecure-skip-tls-verify": value})
    assert load(path).insecure


def test_http_server_and_no_user(tmp_path: Path) -> None:
    path = write(tmp_path, {"server": "http://127.0.0.1:8001"})
    ep = load(path)
    assert (ep.server, ep.token, ep.insecure) == ("http://127.0.0.1:8001", "", False)


@pytest.mark.parametrize(
    ("cluster", "user", "where"),
    [
        ({"server": "https://h", "certificate-authority": "nope.crt"}, {}, "certificate-authority"),
        ({"server": "https://h"}, {"tokenFile": "nope"}, "users[u].user.tokenFile"),
        ({"server": "https://h"}, {"client-certificate": "c", "client-key": "k"}, "client-cert"),
        ({"server": "https://h"}, {"client-certificate-data": "!!"}, "client-certificate-data"),
        ({"server": "https://h"}, {"client-key-data": "S0VZ"}, "needs both"),
        ({"server": "h:6443"}, {}, "clusters[c].cluster.server"),
        ({}, {}, "clusters[c].cluster.server"),
    ],
)
def test_bad_entries_name_the_kubeconfig_and_the_key(
    tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any], where: str
) -> None:
    path = write(tmp_path, cluster, user)
    e = error(path)
    assert e.msg == f"cannot load kubeconfig {path}"
    assert where in e.details


def test_missing_file_and_garbage(tmp_path: Path) -> None:
    e = error(str(tmp_path / "absent"))
    assert "absent" in e.msg and "cannot read it" in e.details
    (tmp_path / "bad").write_text("{ not: [yaml\n")
    assert "not valid YAML" in error(str(tmp_path / "bad")).details
    (tmp_path / "list").write_text("[1, 2]\n")
    assert "expected a mapping" in error(str(tmp_path / "list")).details


@pytest.mark.parametrize(
    ("edit", "detail"),
    [
        (lambda d: d.pop("current-context"), "current-context is not set"),
        (lambda d: d.update({"current-context": "other"}), "clusters[missing] not found"),
        (lambda d: d.update({"current-context": "gone"}), "contexts[gone] not found"),
        (lambda d: d["contexts"][1]["context"].pop("cluster"), "contexts[ctx].context.cluster"),
        (lambda d: d["contexts"][1]["context"].update(user="x"), "users[x] not found"),
    ],
)
def test_broken_contexts(tmp_path: Path, edit: Any, detail: str) -> None:
    path = write(tmp_path, {"server": "https://h"})
    doc = json.loads(Path(path).read_text())
    edit(doc)
    Path(path).write_text(json.dumps(doc))
    assert detail in error(path).details


@pytest.mark.parametrize(
    ("cluster", "user"),
    [
        ({}, {"exec": {"command": "aws", "apiVersion": "client.authentication.k8s.io/v1"}}),
        ({}, {"auth-provider": {"name": "oidc"}}),
        ({}, {"username": "admin", "password": "secret"}),
        ({"proxy-url": "http://proxy:3128"}, {}),
        ({"tls-server-name": "kubernetes"}, {}),
    ],
)
def test_forms_for_the_full_client(
    tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any]
) -> None:
    path = write(tmp_path, {"server": "https://h", **cluster}, user)
    assert needs_full_client(path)
    assert "needs the kubernetes client" in error(path).details


def test_common_forms_do_not_need_the_full_client(tmp_path: Path) -> None:
    assert not needs_full_client("")  # the service account
    assert not needs_full_client(write(tmp_path, {"server": "https://h"}, {"token": "t"}))
    # Broken: the light client reports it (lazily), as the full one would.
    assert not needs_full_client(str(tmp_path / "absent"))


def service_account(tmp_path: Path) -> Path:
    root = tmp_path / "sa"
    root.mkdir()
    (root / "token").write_text("sa-token\n")
    (root / "ca.crt").write_bytes(PEM)
    return root


@pytest.mark.parametrize(
    ("host", "server"),
    [("10.96.0.1", "https://10.96.0.1:443"), ("fd00::1", "https://[fd00::1]:443")],
)
def test_in_cluster(tmp_path: Path, host: str, server: str) -> None:
    root = service_account(tmp_path)
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": "443"}
    assert load("", str(root), env) == Endpoint(
        server=server,
        source="in-cluster configuration",
        ca_file=str(root / "ca.crt"),
        token="sa-token",
        token_file=str(root / "token"),
    )


def test_in_cluster_errors(tmp_path: Path) -> None:
    root = service_account(tmp_path)
    with pytest.raises(ClusterError, match="in-cluster") as info:
        load("", str(root), {})
    assert "KUBERNETES_SERVICE_HOST" in info.value.details
    env = {"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "443"}
    (root / "ca.crt").unlink()
    with pytest.raises(ClusterError, match="in-cluster") as info:
        load("", str(root), env)
    assert "ca.crt" in info.value.details
    (root / "token").unlink()
    with pytest.raises(ClusterError, match="in-cluster") as info:
        load("", str(root), env)
    assert "token" in info.value.details


def test_default_service_account_root() -> None:
    assert kubeconfig.SERVICE_ACCOUNT == "/var/run/secrets/kubernetes.io/serviceaccount"
