"""The shared reader of a JSON record and the safetensors file whose SHA-256 it holds: a round
trip, and one exact line for each way the pair can be wrong (a crafted record, a damaged file,
a pickle in its place)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
import safetensors.torch
import torch
from safetensors.torch import save as st_save

from ganforge import checkedfiles, fileio
from ganforge.checkedfiles import CheckedFileError, FileKind
from ganforge.errors import CheckpointError

KIND = FileKind(noun="widget", fix="make the widget again", instead="pass a widget file",
                format_version=2, required=("step",))
TENSORS = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.tensor([7])}


def write_pair(folder: Path, blob: bytes = b"", **changes) -> tuple[Path, Path]:
    """``folder/w.json`` naming ``folder/w.safetensors`` (``blob``, else TENSORS) and its
    SHA-256; ``changes`` edit the record (a value of None removes the key)."""
    folder.mkdir(parents=True, exist_ok=True)
    blob = blob or st_save(TENSORS)
    st, js = folder / "w.safetensors", folder / "w.json"
    st.write_bytes(blob)
    record = {"format_version": 2, "step": 3, "tensors_file": st.name,
              "sha256": hashlib.sha256(blob).hexdigest(), **changes}
    js.write_text(json.dumps({k: v for k, v in record.items() if v is not None}))
    return st, js


def refused(json_path: Path, code: str, message: str) -> CheckedFileError:
    with pytest.raises(CheckedFileError) as info:
        checkedfiles.read_checked(json_path, KIND)
    assert str(info.value) == message and info.value.code == code
    return info.value


def test_round_trip(tmp_path):
    st, js = write_pair(tmp_path)
    checked = checkedfiles.read_checked(js, KIND)
    assert checked.record == json.loads(js.read_text()) and checked.tensors_path == st
    assert checked.sha256 == hashlib.sha256(st.read_bytes()).hexdigest()
    assert sorted(checked.tensors) == ["a", "b"]
    assert all(torch.equal(checked.tensors[k], v) for k, v in TENSORS.items())
    # The tensors are the process's own: rewriting the file in place does not reach them.
    st.write_bytes(bytes(len(st.read_bytes())))
    assert all(torch.equal(checked.tensors[k], v) for k, v in TENSORS.items())


def test_the_error_is_a_checkpoint_error_of_reason_and_fix(tmp_path):
    err = refused(tmp_path / "absent.json", "not_found",
                  f"widget '{tmp_path / 'absent.json'}' not found; pass a widget file")
    assert isinstance(err, CheckpointError) and err.path == tmp_path / "absent.json"
    assert (err.reason, err.fix) == (f"widget '{tmp_path / 'absent.json'}' not found",
                                     "pass a widget file")


# ---------------------------------------------------------------------------------- the record

def test_a_folder_where_the_record_belongs(tmp_path):
    (tmp_path / "w.json").mkdir()
    refused(tmp_path / "w.json", "unreadable",
            f"cannot read widget '{tmp_path / 'w.json'}' (Is a directory); pass a widget file")


@pytest.mark.parametrize("text", [b'{"format_version": 2, "st', b"\xff\xfe{}",
                                  pickle.dumps({"format_version": 2})])
def test_not_json(tmp_path, text):
    _, js = write_pair(tmp_path)
    js.write_bytes(text)
    error = "JSONDecodeError" if text.startswith(b"{") else "UnicodeDecodeError"
    refused(js, "not_json", f"widget '{js}' is not valid JSON ({error}); make the widget again")


@pytest.mark.parametrize("value, what", [([1, 2], "an array"), ("w", "a string"),
                                         (3, "a number"), (None, "null")])
def test_not_an_object(tmp_path, value, what):
    _, js = write_pair(tmp_path)
    js.write_text(json.dumps(value))
    refused(js, "foreign", f"'{js}' is not a ganforge widget (its JSON is {what}, not an "
            "object); pass a widget file")


def test_another_kind_of_record(tmp_path):
    _, js = write_pair(tmp_path, format_version=None)
    refused(js, "foreign", f"'{js}' is not a ganforge widget; pass a widget file")
    marked = FileKind(noun="widget", fix="f", instead="i", format_version=2,
                      mark=("kind", "widget"))
    _, js = write_pair(tmp_path, kind="gadget")
    with pytest.raises(CheckedFileError, match=r"is not a ganforge widget; i$"):
        checkedfiles.read_record(js, marked)
    _, js = write_pair(tmp_path, kind="widget")
    assert checkedfiles.read_record(js, marked)["kind"] == "widget"


def test_a_newer_format_version(tmp_path):
    _, js = write_pair(tmp_path, format_version=3)
    refused(js, "newer", f"widget '{js}' has format version 3, newer than this ganforge "
            "understands (2); upgrade ganforge")
    _, js = write_pair(tmp_path, format_version=1)  # an older one is read
    assert checkedfiles.read_checked(js, KIND).record["format_version"] == 1


@pytest.mark.parametrize("version", ["2", 1.5, 0, True])
def test_an_invalid_format_version(tmp_path, version):
    _, js = write_pair(tmp_path, format_version=version)
    refused(js, "version", f"widget '{js}' has no valid format version ({version!r}); make "
            "the widget again")


def test_a_missing_required_key(tmp_path):
    _, js = write_pair(tmp_path, step=None, sha256=None)
    refused(js, "incomplete", f"widget '{js}' lacks step, sha256; make the widget again")
    _, js = write_pair(tmp_path, sha256="ABC", tensors_file=7)
    refused(js, "incomplete", f"widget '{js}' lacks a valid sha256, a valid tensors_file; "
            "make the widget again")


# ----------------------------------------------------------------------------- the tensors file

@pytest.mark.parametrize("name", ["../w.safetensors", "..\\w.safetensors",
                                  "/elsewhere/w.safetensors", "sub/w.safetensors"])
def test_a_tensors_name_with_a_path_is_looked_up_beside_the_record(tmp_path, name):
    write_pair(tmp_path)  # a valid w.safetensors one folder up: never read
    folder = tmp_path / "records"
    st, js = write_pair(folder, tensors_file=name)
    st.unlink()
    refused(js, "tensors_missing", f"widget tensors '{folder / 'w.safetensors'}' are missing; "
            "make the widget again")
    write_pair(folder, tensors_file=name)
    assert checkedfiles.read_checked(js, KIND).tensors_path == folder / "w.safetensors"


@pytest.mark.parametrize("name", ["..", ".", "", "sub/", "w\0.safetensors"])
def test_a_tensors_name_that_names_no_file(tmp_path, name):
    _, js = write_pair(tmp_path, tensors_file=name)
    refused(js, "incomplete", f"widget '{js}' lacks a valid tensors_file; make the widget again")


def test_a_fixed_tensors_name_ignores_the_record(tmp_path):
    fixed = FileKind(noun="widget", fix="f", instead="i", format_version=2,
                     tensors_name="w.safetensors")
    st, js = write_pair(tmp_path, tensors_file=None)
    checked = checkedfiles.read_checked(js, fixed)
    assert checked.tensors_path == st and sorted(checked.tensors) == ["a", "b"]


def test_a_missing_tensors_file(tmp_path):
    st, js = write_pair(tmp_path)
    st.unlink()
    refused(js, "tensors_missing", f"widget tensors '{st}' are missing; make the widget again")
    st.mkdir()
    refused(js, "tensors_unreadable", f"cannot read widget tensors '{st}' (Is a directory); "
            "make the widget again")


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty"])
def test_a_checksum_mismatch(tmp_path, damage):
    st, js = write_pair(tmp_path)
    blob = bytearray(st.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    st.write_bytes({"truncated": st.read_bytes()[:-9], "flipped": bytes(blob),
                    "empty": b""}[damage])
    refused(js, "checksum", f"widget '{st}' fails its checksum (truncated or corrupt); make "
            "the widget again")
    worded = FileKind(noun="widget", fix="f", instead="i", format_version=2,
                      mismatch="does not match the SHA-256 in its w.json")
    with pytest.raises(CheckedFileError) as info:
        checkedfiles.check_tensors(st, json.loads(js.read_text())["sha256"], worded)
    assert str(info.value) == f"widget '{st}' does not match the SHA-256 in its w.json; f"


def test_a_valid_checksum_on_a_file_that_is_not_safetensors(tmp_path):
    st, js = write_pair(tmp_path, blob=b"\x00\x01 tensors? no, a header of nonsense")
    verified = checkedfiles.check_tensors(st, json.loads(js.read_text())["sha256"], KIND)
    assert verified.st_size == st.stat().st_size  # the checksum alone passes
    refused(js, "not_safetensors", f"widget '{st}' is not a safetensors file "
            "(SafetensorError); make the widget again")


class Payload:
    """Unpickling this creates ``marker``: what a malicious file would do, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("saver", ["pickle", "torch.save"])
def test_a_pickle_is_refused_unread(tmp_path, monkeypatch, saver):
    marker = tmp_path / "PAYLOAD_RAN"
    if saver == "pickle":
        blob = pickle.dumps({"a": Payload(marker)}, protocol=4)
    else:
        torch.save({"a": Payload(marker)}, tmp_path / "evil.pt")
        blob = (tmp_path / "evil.pt").read_bytes()
    st, js = write_pair(tmp_path, blob=blob)  # with a matching checksum, even

    def never(path):
        raise AssertionError(f"{path} was hashed")

    monkeypatch.setattr(fileio, "sha256_file", never)  # past its first bytes, it is not read
    refused(js, "pickle", f"widget '{st}' is not a safetensors file but a pickle, which "
            "ganforge never loads (it can run code); make the widget again")
    assert not marker.exists()


def test_a_safetensors_header_length_that_starts_like_a_pickle(tmp_path):
    """A header of 0x0480 bytes starts the file with b"\\x80\\x04", as protocol 4 does."""
    blob = next(b for b in (st_save(TENSORS, metadata={"pad": "x" * n}) for n in range(1200))
                if b[:2] == b"\x80\x04")
    _, js = write_pair(tmp_path, blob=blob)
    assert sorted(checkedfiles.read_checked(js, KIND).tensors) == ["a", "b"]


def test_a_file_replaced_between_its_check_and_its_loading(tmp_path, monkeypatch):
    st, js = write_pair(tmp_path)
    other = tmp_path / "other.safetensors"
    other.write_bytes(st_save({"a": torch.zeros(2)}))
    real_load = safetensors.torch.load_file

    def swap_then_load(path, device="cpu"):
        os.replace(other, path)  # a writer's atomic replace, after the checksum was taken
        return real_load(path, device=device)

    monkeypatch.setattr(safetensors.torch, "load_file", swap_then_load)
    refused(js, "changed", f"widget '{st}' changed while it was read; try again once nothing "
            "is writing it")

