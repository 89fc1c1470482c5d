"""The runtime's sandboxes asked in a child process (cluster.runtime), against a real
grpcio server of the real CRI proto: the same answers as the in-process client, and a
child that fails, hangs, dies or answers what is not whole refused as code 11."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from multinet.cluster import runtime as runtime_mod
from multinet.cluster.cri import main
from multinet.cluster.runtime import RuntimeProcess, RuntimeSandbox, child_command
from multinet.cni.errors import TRY_AGAIN_LATER, CNIError
from tests.support.cri import FakeRuntime


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[FakeRuntime]:
    with FakeRuntime(str(tmp_path / "cri.sock")) as fake:
        yield fake


def test_the_child_lists_every_sandbox_and_tells_host_networks(runtime: FakeRuntime) -> None:
    runtime.run("c1", "ns1", "web")
    runtime.run("c2", "ns1", "db")
    runtime.stop_sandbox("c2")
    runtime.run("host", "kube-system", "multinet-x", host_network=True)
    client = RuntimeProcess(runtime.socket_path)
    assert sorted(client.sandboxes(), key=lambda s: s.id) == [
        RuntimeSandbox("c1", "ns1", "web", "uid-c1", ready=True),
        RuntimeSandbox("c2", "ns1", "db", "uid-c2", ready=False),
        RuntimeSandbox("host", "kube-system", "multinet-x", "uid-host", ready=True),
    ]
    assert client.host_networks(["c1", "host", "gone"]) == {
        "c1": False,
        "host": True,
        "gone": None,  # NOT_FOUND: removed since listed
    }
    assert client.host_networks([]) == {}  # no child at all
    assert runtime.calls == ["ListPodSandbox"] + ["PodSandboxStatus"] * 3


def test_the_child_starts_without_site_and_finds_multinet() -> None:
    command = child_command()
    assert command[:4] == [sys.executable, "-I", "-S", "-c"]


def test_the_runtimes_failure_comes_back_as_try_again_later(runtime: FakeRuntime) -> None:
    runtime.run("c1", "ns1", "web")
    runtime.fail = grpc.StatusCode.INTERNAL
    with pytest.raises(CNIError) as e:
        RuntimeProcess(runtime.socket_path).sandboxes()
    assert e.value.code == TRY_AGAIN_LATER
    assert runtime.socket_path in e.value.msg and "ListPodSandbox: INTERNAL" in e.value.msg
    assert "failed (the test said so)" in e.value.details


def test_nothing_listening_is_try_again_later(tmp_path: Path) -> None:
    with pytest.raises(CNIError) as e:
        RuntimeProcess(str(tmp_path / "none.sock"), timeout=2).sandboxes()
    assert e.value.code == TRY_AGAIN_LATER and "UNAVAILABLE" in e.value.msg


def test_a_sandbox_without_an_id_makes_the_whole_answer_refused(runtime: FakeRuntime) -> None:
    runtime.run("c1", "ns1", "web")
    runtime.empty_id = True
    with pytest.raises(CNIError) as e:
        RuntimeProcess(runtime.socket_path).sandboxes()
    assert e.value.code == TRY_AGAIN_LATER and "without an ID" in e.value.msg


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("echo 'not json'", "not a JSON object"),
        ('echo \'{"sandboxes": [{"id": "c1"}]}\'', "KeyError"),
        (
            'echo \'{"sandboxes": [{"id": 1, "namespace": "n", "name": "p", "uid": "u", '
            '"ready": true}]}\'',
            "1 is not a string",
        ),
        ("echo '{}'", "no list of sandboxes"),
        ("echo boom >&2; exit 3", "exited 3"),
        ("kill -9 $$", "killed by signal 9"),
    ],
)
def test_a_child_that_does_not_answer_whole_is_try_again_later(
    tmp_path: Path, script: str, expected: str
) -> None:
    client = RuntimeProcess(str(tmp_path / "cri.sock"), command=["/bin/sh", "-c", script, "sh"])
    with pytest.raises(CNIError) as e:
        client.sandboxes()
    assert e.value.code == TRY_AGAIN_LATER
    assert str(tmp_path / "cri.sock") in e.value.msg
    assert expected in str(e.value)


def test_a_status_answer_that_is_not_whole_is_try_again_later(tmp_path: Path) -> None:
    partial = ["/bin/sh", "-c", 'echo \'{"hostNetwork": {"a": true}}\'', "sh"]
    with pytest.raises(CNIError) as e:
        RuntimeProcess(str(tmp_path / "s"), command=partial).host_networks(["a", "b"])
    assert e.value.code == TRY_AGAIN_LATER and "2 sandbox(es)" in str(e.value)
    odd = ["/bin/sh", "-c", 'echo \'{"hostNetwork": {"a": "yes"}}\'', "sh"]
    with pytest.raises(CNIError) as e:
        RuntimeProcess(str(tmp_path / "s"), command=odd).host_networks(["a"])
    assert "true, false or null" in str(e.value)


def test_a_child_past_its_deadline_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_mod, "START_ALLOWANCE", 0.0)
    client = RuntimeProcess(
        str(tmp_path / "s"), timeout=0.5, command=["/bin/sh", "-c", "exec sleep 30", "sh"]
    )
    with pytest.raises(CNIError) as e:
        client.sandboxes()
    assert e.value.code == TRY_AGAIN_LATER and "did not finish in 0.5 s" in e.value.msg


def test_a_child_that_cannot_be_started_is_try_again_later(tmp_path: Path) -> None:
    client = RuntimeProcess(str(tmp_path / "s"), command=[str(tmp_path / "no-python")])
    with pytest.raises(CNIError) as e:
        client.sandboxes()
    assert e.value.code == TRY_AGAIN_LATER and "could not be started" in e.value.msg


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["list", "/s"],
        ["list", "/s", "x"],
        ["list", "/s", "1", "id"],
        ["status", "/s", "1"],
        ["nuke", "/s", "1"],
        ["list", "/s", "0"],
    ],
)
def test_a_command_line_not_understood_is_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err
