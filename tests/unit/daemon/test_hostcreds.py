"""The fallback's credentials: `fallbackKubeconfig` (config), the files multinetd keeps on
the host (daemon.hostcreds), the generated conflist naming them (confgen), and the
fallback's answer, code 11, when the credentials do not work (cluster.apiserver)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from multinet.cluster import kubeconfig
from multinet.cluster.apiserver import ApiServer
from multinet.cni.errors import ClusterError, CredentialsError, InvalidConfig, TryAgainLater
from multinet.daemon import confgen, config
from multinet.daemon.hostcreds import CA_NAME, TOKEN_NAME, HostCredentials

IN_CLUSTER = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def service_account(tmp_path: Path, token: str = "t1\n") -> Path:
    sa = tmp_path / "sa"
    sa.mkdir(exist_ok=True)
    (sa / "token").write_text(token)
    (sa / "ca.crt").write_text("CA\n")
    return sa


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_default_is_under_the_cni_config_dir_in_a_pod_without_a_kubeconfig() -> None:
    conf = config.load({"cniConfigDir": "/etc/cni/net.d"}, IN_CLUSTER)
    assert conf.fallback_kubeconfig == "/etc/cni/net.d/multinet.d/multinetd.kubeconfig"
    assert "fallbackKubeconfig" not in conf.overrides  # a daemon key, never forwarded
    assert config.load({}, {}).fallback_kubeconfig == ""  # no service account: none
    # The daemon's own kubeconfig is the conflist's already.
    assert config.load({"kubeconfig": "/k"}, IN_CLUSTER).fallback_kubeconfig == ""
    assert config.load({"fallbackKubeconfig": ""}, IN_CLUSTER).fallback_kubeconfig == ""
    assert config.load({"fallbackKubeconfig": "/x/k"}, {}).fallback_kubeconfig == "/x/k"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"fallbackKubeconfig": "k"}, "'k' is not an absolute path"),
        ({"fallbackKubeconfig": "/k", "kubeconfig": "/j"}, "give one or the other"),
        ({"fallbackKubeconfig": 3}, "fallbackKubeconfig"),
    ],
)
def test_a_bad_fallback_kubeconfig_is_refused(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        config.load(raw, IN_CLUSTER)


def test_the_generated_conflist_names_the_fallback_kubeconfig() -> None:
    conf = config.load({"cniConfigDir": "/c"}, IN_CLUSTER)
    (plugin,) = confgen.render(conf, "/c/10-p.conflist", {"type": "bridge"})["plugins"]
    assert plugin["kubeconfig"] == "/c/multinet.d/multinetd.kubeconfig"
    (plugin,) = confgen.render(config.load({}, {}), "/p", {"type": "bridge"})["plugins"]
    assert "kubeconfig" not in plugin


def test_the_files_are_written_private_and_follow_the_token(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    path = tmp_path / "net.d" / "multinet.d" / "multinetd.kubeconfig"
    creds = HostCredentials(str(path), IN_CLUSTER, str(sa))
    assert creds.sync() and creds.problem == ""
    token, ca = path.parent / TOKEN_NAME, path.parent / CA_NAME
    assert token.read_text() == "t1"  # trimmed: every client reads it as it is
    assert ca.read_text() == "CA\n"
    assert (mode(path), mode(token), mode(ca), mode(path.parent)) == (0o600, 0o600, 0o644, 0o700)
    ep = kubeconfig.load(str(path))
    assert (ep.server, ep.token, ep.ca_file) == ("https://10.96.0.1:443", "t1", str(ca))

    before = {p: p.stat().st_ino for p in (path, token, ca)}
    assert creds.sync()
    assert {p: p.stat().st_ino for p in (path, token, ca)} == before  # unchanged: not rewritten

    (sa / "token").write_text("t2")  # the kubelet renewed it
    assert creds.sync()
    assert token.read_text() == "t2" and token.stat().st_ino != before[token]
    assert kubeconfig.load(str(path)).token == "t2"
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_without_a_service_account_the_last_files_stay(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    path = tmp_path / "multinet.d" / "multinetd.kubeconfig"
    creds = HostCredentials(str(path), IN_CLUSTER, str(sa))
    assert creds.sync()
    os.unlink(sa / "token")
    assert not creds.sync()
    assert "cannot write the fallback's credentials" in creds.problem
    assert "token" in creds.problem
    assert kubeconfig.load(str(path)).token == "t1"
    assert not HostCredentials(str(path), {}, str(sa)).sync()  # no KUBERNETES_SERVICE_HOST


def test_credential_failures_are_credentials_errors_and_403_is_not(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="KUBERNETES_SERVICE_HOST"):
        kubeconfig.load("", str(tmp_path), {})
    with pytest.raises(CredentialsError, match="cannot read it"):
        kubeconfig.load(str(tmp_path / "missing"))
    from multinet.cluster.api import HTTPFailure, _permanent

    assert type(_permanent("get", HTTPFailure(401, "Unauthorized", b""))) is CredentialsError
    assert type(_permanent("get", HTTPFailure(403, "Forbidden", b""))) is ClusterError


@pytest.mark.parametrize("kubeconfig_name", ["", "missing.kubeconfig"])
def test_the_shims_fallback_answers_code_11_without_credentials(
    tmp_path: Path, kubeconfig_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    path = str(tmp_path / kubeconfig_name) if kubeconfig_name else ""
    with pytest.raises(TryAgainLater, match="multinetd is not answering") as caught:
        ApiServer(path, str(tmp_path), retry_credentials=True).get_pod("ns", "p")
    assert caught.value.code == 11
    # Thin mode's own answer stays: a configuration to fix.
    with pytest.raises(CredentialsError) as permanent:
        ApiServer(path, str(tmp_path)).get_nad("ns", "n")
    assert permanent.value.code == 101


def test_the_conflist_is_json_the_shim_reads(tmp_path: Path) -> None:
    primary = {"cniVersion": "1.0.0", "name": "p", "type": "bridge"}
    raw = {"cniConfigDir": str(tmp_path), "fallbackKubeconfig": str(tmp_path / "k")}
    rendered = confgen.render(config.load(raw, {}), str(tmp_path / "10-p.conf"), primary)
    written = json.loads(json.dumps(rendered))
    assert written["plugins"][0]["kubeconfig"] == str(tmp_path / "k")
