"""multinet-sriov without root: its config, sysfs discovery and the file backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from multinet.cni.errors import INVALID_CONFIG, IO_FAILURE, CNIError
from multinet.plugins.sriov import backend, config, sysfs
from multinet.plugins.sriov.backend import FileBackend, VfState
from tests.support.sriov import FakeNic

VF = "0000:03:02.1"


def conf(**keys: Any) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "sriov",
        "type": "multinet-sriov",
        "deviceID": VF,
        **keys,
    }


def test_every_sriov_cni_key_reaches_the_pf_settings() -> None:
    c = config.load(
        conf(
            vlan=100, vlanQoS=3, vlanProto="802.1ad", mac="CA:FE:00:00:00:01", spoofchk="off",
            trust="on", link_state="enable", min_tx_rate=10, max_tx_rate=100,
        )
    )  # fmt: skip
    assert c.pf_settings() == {
        "vlan": 100, "qos": 3, "proto": "802.1ad", "mac": "ca:fe:00:00:00:01",
        "spoofchk": False, "trust": True, "link_state": "enable",
        "min_tx_rate": 10, "max_tx_rate": 100,
    }  # fmt: skip


def test_pci_bus_id_and_runtime_config_mac() -> None:
    c = config.load(
        {"name": "n", "type": "t", "pciBusID": VF, "mac": "ca:fe:00:00:00:01",
         "runtimeConfig": {"mac": "ca:fe:00:00:00:02"}}
    )  # fmt: skip
    assert (c.device_id, c.mac) == (VF, "ca:fe:00:00:00:02")


@pytest.mark.parametrize(
    "keys",
    [
        {"deviceID": "eth0"},
        {"deviceID": None},
        {"vlan": 4095},
        {"vlan": True},
        {"vlanQoS": 2},  # without vlan
        {"vlan": 5, "vlanQoS": 8},
        {"vlan": 5, "vlanProto": "802.1x"},
        {"spoofchk": "yes"},
        {"link_state": "up"},
        {"mac": "zz"},
        {"min_tx_rate": 10, "max_tx_rate": 5},
        {"ipam": {"subnet": "x"}},
    ],
)
def test_invalid_configs_are_code_7(keys: dict[str, Any]) -> None:
    with pytest.raises(CNIError) as e:
        config.load(conf(**keys))
    assert e.value.code == INVALID_CONFIG


def test_sysfs_discovery(tmp_path: Path) -> None:
    nic = FakeNic(tmp_path)
    nic.add_vf("ens1f0v0")
    pci = nic.add_vf("ens1f0v1")
    dpdk = nic.add_vf("", driver="vfio-pci")
    vf = sysfs.discover(str(nic.sys), pci)
    assert (vf.pf, vf.pf_pci, vf.index, vf.netdev, vf.driver, vf.dpdk) == (
        "ens1f0", "0000:03:00.0", 1, "ens1f0v1", "iavf", False,
    )  # fmt: skip
    d = sysfs.discover(str(nic.sys), dpdk)
    assert (d.index, d.netdev, d.dpdk) == (2, "", True)
    for missing in ("0000:09:00.0", nic.pf_pci):  # no device; the PF is not a VF
        with pytest.raises(CNIError) as e:
            sysfs.discover(str(nic.sys), missing)
        assert e.value.code == INVALID_CONFIG
    assert sysfs.root({}) == "/sys"
    assert sysfs.root({"MULTINET_SYSFS_ROOT": "/x"}) == "/x"


def test_file_backend_table_call_log_and_errors(tmp_path: Path) -> None:
    nic = FakeNic(tmp_path)
    nic.add_vf("v0", mac="aa:bb:cc:dd:ee:ff")
    b = backend.from_env({"MULTINET_SRIOV_BACKEND": f"file:{nic.table_path}"})
    assert isinstance(b, FileBackend)
    assert b.get("ens1f0", 0) == VfState(mac="aa:bb:cc:dd:ee:ff")
    b.set("ens1f0", 0, "vlan", {"vlan": 7, "qos": 1, "proto": "802.1q"})
    assert nic.vf_state(0)["vlan"] == 7
    assert nic.calls() == [
        {"pf": "ens1f0", "vf": 0, "setting": "vlan", "values": {"vlan": 7, "qos": 1,
                                                                "proto": "802.1q"}}
    ]  # fmt: skip
    with pytest.raises(CNIError) as e:  # index out of range
        b.get("ens1f0", 5)
    assert e.value.code == INVALID_CONFIG and "VF 5" in e.value.msg
    with pytest.raises(CNIError) as e:  # a PF without SR-IOV
        b.get("eth9", 0)
    assert "eth9" in e.value.msg
    nic.refuse(0, "trust")
    with pytest.raises(CNIError) as e:
        b.set("ens1f0", 0, "trust", {"trust": True})
    assert e.value.code == IO_FAILURE
    assert all(word in e.value.msg for word in ("trust", "VF 0", "ens1f0"))
    with pytest.raises(CNIError):
        backend.from_env({"MULTINET_SRIOV_BACKEND": "nonsense"})
