"""cluster.credentials: files stamped before they are read, and a token file read again
when the kubelet replaced it (kept when it cannot be read meanwhile)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from multinet.cluster.credentials import Files, Source, TokenFile, checked_token


def replace(path: Path, text: str) -> None:
    new = path.with_name(path.name + ".new")
    new.write_text(text)
    os.rename(new, path)  # the kubelet's atomic rename: a new inode


def test_files_tell_a_rewrite_a_replacement_and_a_removal(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("1")
    b.write_text("1")
    files = Files(str(a), "", str(b))  # '' (no such file in the kubeconfig): ignored
    assert files.paths == (str(a), str(b)) and not files.changed()
    a.write_text("22")
    assert files.changed()
    files = Files(str(a)) + Files(str(b))
    replace(b, "1")  # as many bytes, a new inode
    assert files.changed()
    files = Files(str(a))
    a.unlink()
    assert files.changed()


def test_a_token_file_is_read_again_when_replaced_and_kept_when_unreadable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    token = TokenFile(str(path))
    assert (token.current(), token.reads) == ("first", 0)
    replace(path, "second\n")
    assert (token.current(), token.reads) == ("second", 1)
    assert (token.current(), token.reads) == ("second", 1)  # unchanged: not read
    path.unlink()  # between the kubelet's unlink and rename, say
    assert token.current() == "second"
    path.write_text("third")
    assert token.current() == "third"


def test_a_source_carries_the_newest_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("one")
    source = Source(Files(), "one", str(path))
    assert source.authorization() == "Bearer one"
    replace(path, "two\n")
    assert source.authorization() == "Bearer two" and source.version == 1
    assert Source(Files(), "").authorization() == ""  # no token: no header
    assert not source.same(Source(Files(), "one", str(tmp_path / "gone")))


@pytest.mark.parametrize("text", ["secret token", "sec\nret", "s\u00e9cret", "sec\x7fret"])
def test_a_token_no_header_can_carry(text: str) -> None:
    with pytest.raises(ValueError, match="not a bearer token") as e:
        checked_token(text)
    assert text not in str(e.value)
    assert checked_token("  eyJ.a-b_c~d+e/f=\r\n") == "eyJ.a-b_c~d+e/f="
