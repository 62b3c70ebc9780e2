"""The files driver, on real files under tmp_path; calls go through `Operation` as the
kernel's do (parse the model's arguments, resolve Path params, call)."""
from __future__ import annotations

import importlib
import os
import subprocess
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

import tools.files as files
from kernel.drivers import Operation, ToolError
from tools.files import FilesDriver

DRIVER = FilesDriver()
OPS: dict[str, Operation] = {op.method: op for op in DRIVER.operations()}


def resolve(raw: Any) -> Path:
    """What the kernel does to Path params before the capability check."""
    return Path(os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(raw)))))


def call(method: str, **raw: Any) -> Any:
    op = OPS[method]
    args = op.parse_args({k: os.fspath(v) if isinstance(v, Path) else v for k, v in raw.items()})
    args = {k: resolve(v) if k in op.path_params else v for k, v in args.items()}
    return op.func(**args)


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.endswith(files._TMP_SUFFIX)]


# --- schema, argument parsing, capabilities ---------------------------------------------

def test_operations_and_tool_definitions() -> None:
    assert sorted(OPS) == ["append", "copy", "delete", "list", "move", "read", "search", "write"]
    for op in OPS.values():
        tool = op.tool_definition()
        assert tool["name"] == f"files_{op.method}"
        assert tool["description"] and len(tool["description"]) < 400
        schema = tool["input_schema"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{op.tool_name}.{name} has no description"
            assert "title" not in prop


@pytest.mark.parametrize("method,required", [
    ("read", ["path"]), ("write", ["path", "content"]), ("append", ["path", "content"]),
    ("list", ["path"]), ("search", ["path", "pattern"]), ("move", ["src", "dst"]),
    ("copy", ["src", "dst"]), ("delete", ["path"]),
])
def test_required_fields(method: str, required: list[str]) -> None:
    schema = OPS[method].input_schema()
    assert schema["required"] == required
    for name in required:
        if name in OPS[method].path_params:
            assert schema["properties"][name]["type"] == "string"


def test_write_defaults_to_not_overwriting() -> None:
    props = OPS["write"].input_schema()["properties"]
    assert props["overwrite"]["default"] is False


@pytest.mark.parametrize("method,raw,fragment", [
    ("read", {}, "path: Field required"),
    ("read", {"path": "/x", "limit": "lots"}, "limit: Input should be a valid integer"),
    ("read", {"path": "/x", "offset": -1}, "offset: Input should be greater than or equal to 0"),
    ("write", {"path": "/x", "content": "a", "mode": "w"}, "mode: Extra inputs are not permitted"),
    ("search", {"path": "/x", "pattern": ""}, "pattern: String should have at least 1 character"),
    ("list", {"path": "/x", "limit": 100000}, "limit: Input should be less than or equal to 2000"),
    ("copy", {"src": "/a"}, "dst: Field required"),
])
def test_parse_args_refuses_bad_arguments(method: str, raw: dict[str, Any],
                                          fragment: str) -> None:
    with pytest.raises(ToolError) as err:
        OPS[method].parse_args(raw)
    assert str(err.value).startswith(f"files_{method}: bad arguments: ")
    assert fragment in str(err.value)


def test_parse_args_refuses_non_object() -> None:
    with pytest.raises(ToolError, match="must be a JSON object"):
        OPS["read"].parse_args(["/etc/hosts"])  # type: ignore[arg-type]


def test_parse_args_gives_paths_and_defaults() -> None:
    args = OPS["read"].parse_args({"path": "~/notes.txt"})
    assert args == {"path": Path("~/notes.txt"), "offset": 0, "limit": 2000}


@pytest.mark.parametrize("method,args,expected", [
    ("read", {"path": "/d/a.txt"}, [("fs.read", "/d/a.txt", True)]),
    ("write", {"path": "/d/a.txt", "content": ""}, [("fs.write", "/d/a.txt", True)]),
    ("append", {"path": "/d/a.txt", "content": ""}, [("fs.write", "/d/a.txt", True)]),
    ("list", {"path": "/d"}, [("fs.read", "/d", True)]),
    ("search", {"path": "/d", "pattern": "*"}, [("fs.read", "/d", True)]),
    ("move", {"src": "/d/a", "dst": "/e/b"},
     [("fs.read", "/d/a", True, True), ("fs.write", "/d/a", True, True),
      ("fs.write", "/e/b", True)]),
    ("copy", {"src": "/d/a", "dst": "/e/b"},
     [("fs.read", "/d/a", True, True), ("fs.write", "/e/b", True)]),
    ("delete", {"path": "/d/a"}, [("fs.delete", "/d/a", True, True)]),
])
def test_required_capabilities(method: str, args: dict[str, Any],
                               expected: list[tuple[Any, ...]]) -> None:
    op = OPS[method]
    parsed = op.parse_args(args)
    parsed = {k: resolve(v) if k in op.path_params else v for k, v in parsed.items()}
    assert [tuple(n) for n in op.required_capabilities(parsed)] == \
        [e if len(e) == 4 else (*e, False) for e in expected]


# --- read ------------------------------------------------------------------------------

def test_read_whole_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("héllo\nworld\n", encoding="utf-8")
    out = call("read", path=tmp_path / "a.txt")
    assert out["content"] == "héllo\nworld\n"
    assert out["lines"] == 2 and out["first_line"] == 1 and out["truncated"] is False
    assert out["size_bytes"] == len("héllo\nworld\n".encode())
    assert "next_offset" not in out


def test_read_pages_with_offset_and_limit(tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_text("".join(f"line {i}\n" for i in range(10)))
    out = call("read", path=tmp_path / "n.txt", offset=2, limit=3)
    assert out["content"] == "line 2\nline 3\nline 4\n"
    assert out["first_line"] == 3 and out["truncated"] is True and out["next_offset"] == 5
    assert "offset=5" in out["note"]
    rest = call("read", path=tmp_path / "n.txt", offset=out["next_offset"])
    assert rest["content"].startswith("line 5\n") and rest["truncated"] is False
    assert call("read", path=tmp_path / "n.txt", offset=10)["content"] == ""
    with pytest.raises(ToolError, match="past the end"):
        call("read", path=tmp_path / "n.txt", offset=11)


def test_read_keeps_line_endings(tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_bytes(b"a\r\nb\r\nc")
    assert call("read", path=tmp_path / "w.txt", limit=1)["content"] == "a\r\n"
    assert call("read", path=tmp_path / "w.txt")["content"] == "a\r\nb\r\nc"


def test_read_caps_characters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "MAX_READ_CHARS", 100)
    (tmp_path / "big.txt").write_text("x" * 9 + "\n" * 1 + ("y" * 9 + "\n") * 49)
    out = call("read", path=tmp_path / "big.txt")
    assert len(out["content"]) == 100 and out["truncated"] is True and out["next_offset"] == 10
    (tmp_path / "one.txt").write_text("z" * 1000)
    out = call("read", path=tmp_path / "one.txt")
    assert out["content"] == "z" * 100 and out["truncated"] is True


def test_read_refuses_binary(tmp_path: Path) -> None:
    (tmp_path / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    with pytest.raises(ToolError, match="img.png is a binary"):
        call("read", path=tmp_path / "img.png")
    (tmp_path / "latin1.txt").write_bytes("café crème".encode("latin-1"))
    with pytest.raises(ToolError, match="binary \\(or non-UTF-8\\)"):
        call("read", path=tmp_path / "latin1.txt")


def test_read_multibyte_char_at_sniff_boundary_is_text(tmp_path: Path) -> None:
    text = "a" * (files.SNIFF_BYTES - 1) + "é and more"
    (tmp_path / "edge.txt").write_text(text, encoding="utf-8")
    assert call("read", path=tmp_path / "edge.txt")["content"] == text


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="does not exist"):
        call("read", path=tmp_path / "missing.txt")
    with pytest.raises(ToolError, match="is a folder; use files_list"):
        call("read", path=tmp_path)


def test_read_through_symlink_reads_target(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("real")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    assert call("read", path=tmp_path / "link.txt")["path"] == str(tmp_path / "real.txt")


def test_read_refuses_a_path_that_became_a_symlink(tmp_path: Path) -> None:
    # The kernel checked a resolved path; if it is a symlink by the time we open it, stop.
    (tmp_path / "real.txt").write_text("secret")
    (tmp_path / "swapped.txt").symlink_to(tmp_path / "real.txt")
    with pytest.raises(ToolError, match="became a symlink"):
        DRIVER.read(tmp_path / "swapped.txt")


# --- write / append --------------------------------------------------------------------

def test_write_new_file(tmp_path: Path) -> None:
    out = call("write", path=tmp_path / "new.md", content="# Tîtle\n")
    assert (tmp_path / "new.md").read_text(encoding="utf-8") == "# Tîtle\n"
    assert out == {"path": str(tmp_path / "new.md"), "bytes_written": 9, "created": True,
                   "created_dirs": []}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.md"]


def test_write_new_file_honours_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        call("write", path=tmp_path / "u.txt", content="x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "u.txt").stat().st_mode) == 0o640


def test_write_existing_needs_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")
    target.chmod(0o604)
    with pytest.raises(ToolError, match="already exists; pass overwrite=true"):
        call("write", path=target, content="new")
    assert target.read_text() == "old"
    out = call("write", path=target, content="new", overwrite=True)
    assert target.read_text() == "new" and out["created"] is False
    assert stat.S_IMODE(target.stat().st_mode) == 0o604
    assert leftovers(tmp_path) == []


def test_write_creates_missing_parents(tmp_path: Path) -> None:
    out = call("write", path=tmp_path / "a" / "b" / "c.txt", content="deep")
    assert (tmp_path / "a" / "b" / "c.txt").read_text() == "deep"
    assert out["created_dirs"] == [str(tmp_path / "a"), str(tmp_path / "a" / "b")]


def test_write_errors_leave_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(ToolError, match="is a folder"):
        call("write", path=tmp_path / "d", content="x", overwrite=True)
    (tmp_path / "file").write_text("f")
    with pytest.raises(ToolError, match="part of the path is a file"):
        call("write", path=tmp_path / "file" / "x.txt", content="x")
    with pytest.raises(ToolError, match="not valid text"):
        call("write", path=tmp_path / "s.txt", content="bad \ud800 surrogate")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "file"]


def test_atomic_write_cleans_up_when_filling_fails(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    target.write_text("intact")

    def explode(_: Any) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        files._atomic_write(target, explode, overwrite=True)
    assert target.read_text() == "intact" and leftovers(tmp_path) == []


def test_write_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.geteuid() != 0:
            with pytest.raises(ToolError, match="permission denied"):
                call("write", path=locked / "x.txt", content="x")
            return
        # Root ignores permission bits; the same call in a child without the capability
        # that lets it (CAP_DAC_OVERRIDE) sees them as a person's process would.
        code = ("import sys; from pathlib import Path; from tools.files import FilesDriver;"
                "from kernel.drivers import ToolError\n"
                "try:\n    FilesDriver().write(Path(sys.argv[1]), 'x')\n"
                "except ToolError as e:\n    print(e)")
        out = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                              sys.executable, "-c", code, str(locked / "x.txt")],
                             capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parents[2]).stdout
        assert "permission denied" in out.lower()
        assert not (locked / "x.txt").exists()
    finally:
        locked.chmod(0o700)


def test_append(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    first = call("append", path=log, content="one\n")
    assert first["created"] is True and first["size"] == 4
    out = call("append", path=log, content="twö\n")
    assert log.read_text(encoding="utf-8") == "one\ntwö\n"
    assert out == {"path": str(log), "bytes_appended": 5, "size": 9, "created": False,
                   "created_dirs": []}


def test_append_errors(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"\0\1\2")
    with pytest.raises(ToolError, match="binary"):
        call("append", path=tmp_path / "bin", content="x")
    assert (tmp_path / "bin").read_bytes() == b"\0\1\2"
    with pytest.raises(ToolError, match="not a regular file"):
        call("append", path=tmp_path, content="x")


# --- list / search ---------------------------------------------------------------------

def test_list(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("12345")
    (tmp_path / "A.txt").write_text("1")
    (tmp_path / "zdir").mkdir()
    (tmp_path / ".hidden").write_text("h")
    (tmp_path / "link").symlink_to("/nowhere/at/all")
    out = call("list", path=tmp_path)
    assert [e["name"] for e in out["entries"]] == ["zdir", "A.txt", "b.txt", "link"]
    kinds = {e["name"]: e for e in out["entries"]}
    assert kinds["zdir"]["kind"] == "dir" and "size" not in kinds["zdir"]
    assert kinds["b.txt"] == {"name": "b.txt", "kind": "file", "size": 5,
                              "modified": kinds["b.txt"]["modified"]}
    assert kinds["link"]["kind"] == "symlink" and kinds["link"]["target"] == "/nowhere/at/all"
    assert "T" in kinds["b.txt"]["modified"]
    assert out["total"] == 4 and out["truncated"] is False and out["hidden_skipped"] == 1
    shown = call("list", path=tmp_path, show_hidden=True, limit=2)
    assert shown["total"] == 5 and shown["truncated"] is True and len(shown["entries"]) == 2


def test_list_errors(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ToolError, match="is a file, not a folder; use files_read"):
        call("list", path=tmp_path / "f.txt")
    with pytest.raises(ToolError, match="does not exist"):
        call("list", path=tmp_path / "nope")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for rel in ["Report.PDF", "a/report-2025.pdf", "a/b/notes.txt", "a/b/c/deep.pdf",
                ".git/objects.pdf", "a/.cache.pdf"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.pdf").write_text("secret")
    (root / "linked").symlink_to(outside)
    (root / "alias.pdf").symlink_to(outside / "secret.pdf")
    return root


def test_search_recursive_case_insensitive(tree: Path) -> None:
    out = call("search", path=tree, pattern="*.pdf")
    found = sorted(os.path.relpath(m["path"], tree) for m in out["matches"])
    assert found == ["Report.PDF", "a/b/c/deep.pdf", "a/report-2025.pdf", "alias.pdf"]
    alias = next(m for m in out["matches"] if m["path"].endswith("alias.pdf"))
    assert alias["kind"] == "symlink" and "size" not in alias  # named, not followed
    assert out["truncated"] is False


def test_search_options(tree: Path) -> None:
    exact = call("search", path=tree, pattern="*.pdf", case_sensitive=True)
    assert not any(m["path"].endswith("Report.PDF") for m in exact["matches"])
    hidden = call("search", path=tree, pattern="*.pdf", include_hidden=True)
    names = {Path(m["path"]).name for m in hidden["matches"]}
    assert {"objects.pdf", ".cache.pdf"} <= names
    assert "secret.pdf" not in names  # the symlinked folder is never walked
    dirs = call("search", path=tree, pattern="b")
    assert [(m["path"], m["kind"]) for m in dirs["matches"]] == [(str(tree / "a" / "b"), "dir")]
    capped = call("search", path=tree, pattern="*", limit=2)
    assert len(capped["matches"]) == 2 and capped["truncated"] is True and "note" in capped


def test_search_errors(tree: Path) -> None:
    with pytest.raises(ToolError, match="names only"):
        call("search", path=tree, pattern="a/*.pdf")
    with pytest.raises(ToolError, match="is a file"):
        call("search", path=tree / "Report.PDF", pattern="*")
    with pytest.raises(ToolError, match="does not exist"):
        call("search", path=tree / "nope", pattern="*")


# --- move / copy -----------------------------------------------------------------------

def test_move_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A")
    out = call("move", src=tmp_path / "a.txt", dst=tmp_path / "sub" / "b.txt")
    assert not (tmp_path / "a.txt").exists() and (tmp_path / "sub" / "b.txt").read_text() == "A"
    assert out == {"src": str(tmp_path / "a.txt"), "dst": str(tmp_path / "sub" / "b.txt"),
                   "kind": "file", "created_dirs": [str(tmp_path / "sub")]}


def test_move_folder(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f.txt").write_text("F")
    out = call("move", src=tmp_path / "d", dst=tmp_path / "moved")
    assert out["kind"] == "dir" and (tmp_path / "moved" / "e" / "f.txt").read_text() == "F"


def test_move_overwrite_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "b.txt").write_text("B")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ToolError, match="already exists; pass overwrite=true"):
        call("move", src=tmp_path / "a.txt", dst=tmp_path / "b.txt")
    with pytest.raises(ToolError, match="existing folder; give the full destination path"):
        call("move", src=tmp_path / "a.txt", dst=tmp_path / "folder")
    with pytest.raises(ToolError, match="same path or inside it"):
        call("move", src=tmp_path / "a.txt", dst=tmp_path / "a.txt")
    with pytest.raises(ToolError, match="same path or inside it"):
        call("move", src=tmp_path / "folder", dst=tmp_path / "folder" / "x")
    with pytest.raises(ToolError, match="does not exist"):
        call("move", src=tmp_path / "nope", dst=tmp_path / "c.txt")
    with pytest.raises(ToolError, match="a folder never replaces a file"):
        call("move", src=tmp_path / "folder", dst=tmp_path / "b.txt", overwrite=True)
    assert (tmp_path / "a.txt").read_text() == "A" and (tmp_path / "b.txt").read_text() == "B"
    call("move", src=tmp_path / "a.txt", dst=tmp_path / "b.txt", overwrite=True)
    assert (tmp_path / "b.txt").read_text() == "A" and not (tmp_path / "a.txt").exists()


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    """A folder on another filesystem than tmp_path (a tmpfs), for cross-device moves."""
    import shutil
    import tempfile
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or \
            shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second writable filesystem")
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="deskpilot-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_move_across_filesystems(tmp_path: Path, other_fs: Path) -> None:
    (tmp_path / "f.txt").write_text("F")
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "g.txt").write_text("G")
    (other_fs / "old.txt").write_text("old")
    call("move", src=tmp_path / "f.txt", dst=other_fs / "old.txt", overwrite=True)
    call("move", src=tmp_path / "d", dst=other_fs / "d")
    assert (other_fs / "old.txt").read_text() == "F"
    assert (other_fs / "d" / "e" / "g.txt").read_text() == "G"
    assert list(tmp_path.iterdir()) == [] and leftovers(other_fs) == []
    with pytest.raises(ToolError, match="already exists"):
        (tmp_path / "h.txt").write_text("H")
        call("move", src=tmp_path / "h.txt", dst=other_fs / "old.txt")
    assert (tmp_path / "h.txt").exists()


def test_copy_file_keeps_mode_and_time(tmp_path: Path) -> None:
    src = tmp_path / "a.sh"
    src.write_text("#!/bin/sh\n")
    src.chmod(0o750)
    os.utime(src, (1_600_000_000, 1_600_000_000))
    out = call("copy", src=src, dst=tmp_path / "out" / "b.sh")
    dst = tmp_path / "out" / "b.sh"
    assert dst.read_text() == "#!/bin/sh\n" and src.exists()
    assert stat.S_IMODE(dst.stat().st_mode) == 0o750 and dst.stat().st_mtime == 1_600_000_000
    assert out["kind"] == "file" and out["created_dirs"] == [str(tmp_path / "out")]
    assert leftovers(tmp_path) == []


def test_copy_folder_keeps_symlinks_as_links(tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    src = tmp_path / "src"
    (src / "inner").mkdir(parents=True)
    (src / "inner" / "x.txt").write_text("x")
    (src / "leak").symlink_to(tmp_path / "outside.txt")
    out = call("copy", src=src, dst=tmp_path / "dst")
    assert out["kind"] == "dir" and (tmp_path / "dst" / "inner" / "x.txt").read_text() == "x"
    assert (tmp_path / "dst" / "leak").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "outside.txt", "src"]


def test_copy_overwrite_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "b.txt").write_text("B")
    with pytest.raises(ToolError, match="already exists"):
        call("copy", src=tmp_path / "a.txt", dst=tmp_path / "b.txt")
    with pytest.raises(ToolError, match="does not exist"):
        call("copy", src=tmp_path / "nope.txt", dst=tmp_path / "c.txt")
    with pytest.raises(ToolError, match="existing folder"):
        call("copy", src=tmp_path / "a.txt", dst=tmp_path)
    call("copy", src=tmp_path / "a.txt", dst=tmp_path / "b.txt", overwrite=True)
    assert (tmp_path / "b.txt").read_text() == "A" and (tmp_path / "a.txt").read_text() == "A"
    assert leftovers(tmp_path) == []


# --- delete ----------------------------------------------------------------------------

@pytest.fixture
def trash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private home and XDG data dir under tmp_path, so the real trash is never touched.

    send2trash's freedesktop backend reads XDG_DATA_HOME when imported, so it is reloaded
    with the temporary environment (and again afterwards with the real one).
    """
    from send2trash import send2trash as backend
    if backend.__module__ != "send2trash.plat_other":
        pytest.skip(f"{backend.__module__} caches the trash location per process")
    plat = importlib.import_module("send2trash.plat_other")
    (tmp_path / "home").mkdir()
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    importlib.reload(plat)
    assert str(tmp_path / "data" / "Trash") == plat.HOMETRASH
    yield tmp_path / "data" / "Trash"
    monkeypatch.undo()
    importlib.reload(plat)


def test_delete_moves_to_trash_and_can_be_restored(tmp_path: Path, trash: Path) -> None:
    victim = tmp_path / "home" / "Documents" / "old notes.txt"
    victim.parent.mkdir()
    victim.write_text("keep me")
    out = call("delete", path=victim)
    assert not victim.exists()
    assert out == {"path": str(victim), "kind": "file",
                   "trashed_to": str(trash / "files" / "old notes.txt"),
                   "trash_info": str(trash / "info" / "old notes.txt.trashinfo")}
    info = Path(out["trash_info"]).read_text()
    original = next(line.split("=", 1)[1] for line in info.splitlines() if line.startswith("Path="))
    assert Path(unquote(original)) == victim
    os.replace(out["trashed_to"], victim)  # what a restore does
    Path(out["trash_info"]).unlink()
    assert victim.read_text() == "keep me"


def test_delete_same_name_twice_and_folders(tmp_path: Path, trash: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("first")
    first = call("delete", path=work / "a.txt")
    (work / "a.txt").write_text("second")
    second = call("delete", path=work / "a.txt")
    assert first["trashed_to"] != second["trashed_to"]
    assert Path(second["trashed_to"]).read_text() == "second"
    assert Path(first["trashed_to"]).read_text() == "first"
    (work / "dir" / "sub").mkdir(parents=True)
    (work / "dir" / "sub" / "f").write_text("f")
    out = call("delete", path=work / "dir")
    assert out["kind"] == "dir" and Path(out["trashed_to"], "sub", "f").read_text() == "f"
    assert list(work.iterdir()) == []


def test_delete_errors(tmp_path: Path, trash: Path) -> None:
    with pytest.raises(ToolError, match="does not exist"):
        call("delete", path=tmp_path / "missing")
    with pytest.raises(ToolError, match="holds the user's home"):
        call("delete", path=tmp_path / "home")
    with pytest.raises(ToolError, match="holds the user's home"):
        call("delete", path="/")
    assert (tmp_path / "home").is_dir()


def test_driver_is_declared_as_entry_point() -> None:
    # Checked against pyproject.toml rather than the installed metadata, which is only
    # refreshed when the project is (re)installed.
    import tomllib
    from importlib.metadata import EntryPoint
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    value = project["project"]["entry-points"]["deskpilot.drivers"]["files"]
    assert EntryPoint("files", value, "deskpilot.drivers").load() is FilesDriver
