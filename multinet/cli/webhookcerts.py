"""A self-signed CA and a serving certificate for the webhook's Service, made with openssl
(the bootstrap when cert-manager is not installed; see docs/install.md)."""

from __future__ import annotations

import os
import subprocess
import tempfile


def dns_names(service: str, namespace: str) -> list[str]:
    base = f"{service}.{namespace}"
    return [service, base, f"{base}.svc", f"{base}.svc.cluster.local"]


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise OSError(f"openssl {args[0]} failed: {proc.stderr.strip()[-500:]}")


def generate(
    directory: str,
    service: str = "multinet-webhook",
    namespace: str = "kube-system",
    days: int = 825,
) -> list[str]:
    """ca.crt, tls.crt and tls.key in `directory` (keys mode 0600); their paths."""
    os.makedirs(directory, exist_ok=True)
    ca_key, ca_crt = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.crt")
    key, crt = os.path.join(directory, "tls.key"), os.path.join(directory, "tls.crt")
    old = os.umask(0o077)
    try:
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(days),
            "-subj", f"/CN={service}-ca", "-keyout", ca_key, "-out", ca_crt,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            csr, ext = os.path.join(tmp, "tls.csr"), os.path.join(tmp, "ext.cnf")
            san = ",".join(f"DNS:{n}" for n in dns_names(service, namespace))
            with open(ext, "w") as f:
                f.write(
                    f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                )
            _openssl(
                "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
                "-subj", f"/CN={service}.{namespace}.svc", "-keyout", key, "-out", csr,
            )  # fmt: skip
            _openssl(
                "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
                "-days", str(days), "-sha256", "-extfile", ext, "-out", crt,
            )  # fmt: skip
    finally:
        os.umask(old)
    for path in (ca_crt, crt):
        os.chmod(path, 0o644)
    return [ca_crt, crt, key, ca_key]
