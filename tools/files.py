"""The files driver: read, write, list, search, move, copy and delete (to the trash).

Every `Path` argument arrives resolved by the kernel (``~``, ``..``, symlinks): it is the
exact path whose capability was checked, and the only path acted on. Every operation
returns a small JSON-able dict, carrying what undo needs (where things went).

Choices:
- ``move`` needs ``fs.read:{src}``, ``fs.write:{src}``, ``fs.write:{dst}``. The file leaving
  ``src`` is a write to it, not a delete: a move keeps the data and is undoable, and whoever
  may write ``src`` can already destroy it by overwriting, so ``fs.delete`` would be friction
  without protection. ``fs.read:{src}`` as in ``copy``: the content flows to ``dst``, so a
  write-only grant must not become a way to read a file.
- A destination is the full target path; an existing folder as ``dst`` is refused, not
  copied *into*, since the checked path must be the written one. Nothing is replaced unless
  ``overwrite`` is true. Missing parent folders are created (reported in ``created_dirs``).
- ``delete`` never unlinks: send2trash moves the path to the desktop trash, and the result
  names the trashed copy and its ``.trashinfo`` when a freedesktop trash holds them.
- Folders are copied with symlinks kept as links and ``search`` never follows symlinked
  folders, so links never pull in content from outside the checked path.
"""
from __future__ import annotations

import codecs
import contextlib
import errno
import fnmatch
import io
import logging
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO
from urllib.parse import unquote

from pydantic import Field
from send2trash import TrashPermissionError, send2trash

from kernel.drivers import Driver, ToolError, operation

log = logging.getLogger(__name__)

MAX_READ_CHARS = 60_000      # per call; more is paged with `offset`
SNIFF_BYTES = 8192           # how much is inspected to tell text from binary
MAX_SCAN = 200_000           # entries `search` looks at before giving up
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_TMP_SUFFIX = ".deskpilot-tmp"

Result = dict[str, Any]
FilePath = Annotated[Path, Field(description="Path of the file; `~` means the user's home.")]
DirPath = Annotated[Path, Field(description="Path of the folder; `~` means the user's home.")]
Content = Annotated[str, Field(description="Text to write, stored as UTF-8 exactly as given.")]
Overwrite = Annotated[bool, Field(description="Replace the destination if it already exists.")]
Limit = Annotated[int, Field(ge=1, le=2000, description="Maximum number of entries returned.")]
Hidden = Annotated[bool, Field(description="Include names starting with '.' (and, when "
                                           "searching, what is inside such folders).")]
Src = Annotated[Path, Field(description="The file or folder to act on.")]
Dst = Annotated[Path, Field(description="Full destination path, name included "
                                        "(not just the folder to put it in).")]

_REASONS: list[tuple[type[OSError], str]] = [
    (FileNotFoundError, "{name} does not exist"), (IsADirectoryError, "it is a folder"),
    (NotADirectoryError, "a part of the path is a file, not a folder"),
    (FileExistsError, "{name} already exists"), (PermissionError, "permission denied")]


@contextlib.contextmanager
def _errors(path: Path, action: str) -> Iterator[None]:
    """Turn OS errors into `ToolError`s the model can act on."""
    try:
        yield
    except OSError as exc:
        reason = next((r for t, r in _REASONS if isinstance(exc, t)), "{why}")
        if exc.errno == errno.ELOOP:
            reason = "it became a symlink after it was checked; ask again"
        reason = reason.format(name=exc.filename or path, why=exc.strerror or exc)
        raise ToolError(f"cannot {action} {path}: {reason}") from None


def _exists(path: Path) -> ToolError:
    return ToolError(f"{path} already exists; pass overwrite=true to replace it")


def _kind(mode: int) -> str:
    return ("symlink" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode)
            else "file" if stat.S_ISREG(mode) else "other")


def _describe(path: Path, st: os.stat_result, key: str = "path") -> Result:
    out: Result = {key: path.name if key == "name" else str(path), "kind": _kind(st.st_mode)}
    if out["kind"] == "file":
        out["size"] = st.st_size
    elif out["kind"] == "symlink":
        with contextlib.suppress(OSError):
            out["target"] = os.readlink(path)
    out["modified"] = datetime.fromtimestamp(st.st_mtime).astimezone().isoformat("T", "seconds")
    return out


def _open_text(path: Path, st: os.stat_result) -> BinaryIO:
    """Open a regular file for reading, refusing binary content (NUL bytes, not UTF-8)."""
    if not stat.S_ISREG(st.st_mode):
        raise ToolError(f"{path} is not a regular file")
    raw = open(os.open(path, os.O_RDONLY | _NOFOLLOW), "rb")  # noqa: SIM115 - caller closes
    try:
        head = raw.read(SNIFF_BYTES)
        try:  # final=False when the sniff may have cut a multi-byte character in two
            codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SNIFF_BYTES)
        except UnicodeDecodeError:
            head = b"\0"
        if b"\0" in head:
            raise ToolError(f"{path} is a binary (or non-UTF-8) file of {st.st_size} bytes; "
                            "only text files can be read or appended to")
        raw.seek(0)
    except BaseException:
        raw.close()
        raise
    return raw


def _encode(content: str) -> bytes:
    try:
        return content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ToolError(f"content is not valid text: {exc.reason} at {exc.start}") from None


def _make_parents(path: Path) -> list[str]:
    """Create the missing folders above `path`; returns them, outermost first."""
    missing = [p for p in path.parents if not os.path.lexists(p)][::-1]
    for folder in missing:
        os.mkdir(folder)
        log.info("created folder %s", folder)
    return [str(p) for p in missing]


def _check_target(src: Path, dst: Path, overwrite: bool) -> os.stat_result:
    """Validate a copy/move pair; returns the source's lstat."""
    st = os.lstat(src)
    if src == dst or dst.is_relative_to(src):
        raise ToolError(f"cannot put {src} at {dst}: that is the same path or inside it")
    if os.path.isdir(dst):
        raise ToolError(f"{dst} is an existing folder; give the full destination path, "
                        f"e.g. {dst / src.name}")
    if os.path.lexists(dst) and stat.S_ISDIR(st.st_mode):
        raise ToolError(f"{dst} already exists; a folder never replaces a file")
    if os.path.lexists(dst) and not overwrite:
        raise _exists(dst)
    return st


def _atomic_write(path: Path, fill: Callable[[BinaryIO], object], overwrite: bool,
                  mode: int | None = None) -> None:
    """Write a temp file beside `path`, fsync it, then put it in place in one step, so a
    crash leaves the old file or the new one, never half of one. Without `overwrite` the
    last step is a hard link, which fails atomically if `path` has appeared meanwhile."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{_TMP_SUFFIX}")
    # Mode 0o666 so the umask applies as to any new file; O_EXCL never reuses a file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        try:
            os.replace(tmp, path) if overwrite else os.link(tmp, path)
        except FileExistsError:
            raise _exists(path) from None
        except OSError:  # no hard links on this filesystem
            if overwrite or os.path.lexists(path):
                raise
            os.replace(tmp, path)
        with contextlib.suppress(OSError):  # make the new directory entry durable (POSIX)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _trash_entries(path: Path) -> dict[Path, Path]:
    """.trashinfo file -> trashed copy, for each entry of `path` in a freedesktop trash
    (the home trash, then the trash folders at the top of the path's drive)."""
    data = Path(os.path.realpath(os.environ.get("XDG_DATA_HOME")
                                 or Path.home() / ".local" / "share"))
    mount = path.parent
    while not os.path.ismount(mount) and mount.parent != mount:
        mount = mount.parent
    uid = os.getuid() if hasattr(os, "getuid") else 0
    stem, found = os.path.splitext(path.name)[0], dict[Path, Path]()
    for trash, topdir in [(data / "Trash", data), (mount / ".Trash" / str(uid), mount),
                          (mount / f".Trash-{uid}", mount)]:
        with contextlib.suppress(OSError), os.scandir(trash / "info") as it:
            for entry in it:
                if entry.name.startswith(stem) and entry.name.endswith(".trashinfo"):
                    text = Path(entry.path).read_text("utf-8", "replace")
                    fields = dict(line.partition("=")[::2] for line in text.splitlines())
                    if topdir / unquote(fields.get("Path", "")) == path:  # relative or not
                        found[Path(entry.path)] = trash / "files" / entry.name[:-10]
    return found


class FilesDriver(Driver):
    """Files and folders on the user's computer."""

    name = "files"

    @operation("fs.read:{path}")
    def read(self, path: FilePath,
             offset: Annotated[int, Field(ge=0, description="Number of lines to skip.")] = 0,
             limit: Annotated[int, Field(ge=1, le=10_000,
                                         description="Maximum number of lines.")] = 2000) -> Result:
        """Read a UTF-8 text file, optionally a window of its lines. Returns the text in
        `content`; when `truncated` is true, call again with `offset` = `next_offset`."""
        with _errors(path, "read"):
            st = os.stat(path)
            if stat.S_ISDIR(st.st_mode):
                raise ToolError(f"{path} is a folder; use files_list to see what is in it")
            with io.TextIOWrapper(_open_text(path, st), encoding="utf-8-sig",
                                  errors="replace", newline="") as text:
                skipped = 0
                while skipped < offset and (chunk := text.readline(65536)):
                    skipped += chunk.endswith(("\n", "\r"))
                if skipped < offset:
                    raise ToolError(f"offset {offset} is past the end of {path} ({skipped} lines)")
                lines: list[str] = []
                chars, cut = 0, False
                while len(lines) < limit and (line := text.readline(MAX_READ_CHARS - chars + 1)):
                    if chars + len(line) > MAX_READ_CHARS:
                        if not lines:  # one enormous line: give its start and move on
                            lines.append(line[:MAX_READ_CHARS])
                        cut = True
                        break
                    lines.append(line)
                    chars += len(line)
                more = cut or bool(text.read(1))
        out: Result = {"path": str(path), "content": "".join(lines), "first_line": offset + 1,
                       "lines": len(lines), "size_bytes": st.st_size, "truncated": more}
        if more:
            out["next_offset"] = nxt = offset + len(lines)
            out["note"] = f"output stopped at line {nxt}; call again with offset={nxt} for more"
        return out

    @operation("fs.write:{path}")
    def write(self, path: FilePath, content: Content, overwrite: Overwrite = False) -> Result:
        """Create a text file, or replace one when `overwrite` is true; missing parent
        folders are created. The write is atomic: readers see the old or the new file."""
        data = _encode(content)
        with _errors(path, "write"):
            if os.path.isdir(path):
                raise ToolError(f"{path} is a folder; give the path of a file")
            existed = os.path.lexists(path)
            if existed and not overwrite:
                raise _exists(path)
            created_dirs = _make_parents(path)
            mode = stat.S_IMODE(os.stat(path).st_mode) if existed else None
            _atomic_write(path, lambda f: f.write(data), overwrite, mode)
        log.info("wrote %d bytes to %s", len(data), path)
        return {"path": str(path), "bytes_written": len(data), "created": not existed,
                "created_dirs": created_dirs}

    @operation("fs.write:{path}")
    def append(self, path: FilePath, content: Content) -> Result:
        """Append text to the end of a text file, creating the file (and its folders) if
        missing. Returns the number of bytes appended and the new size."""
        data = _encode(content)
        with _errors(path, "append to"):
            if existed := os.path.lexists(path):
                _open_text(path, os.stat(path)).close()
            created_dirs = _make_parents(path)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW
            with open(os.open(path, flags, 0o666), "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                size = os.fstat(f.fileno()).st_size
        log.info("appended %d bytes to %s", len(data), path)
        return {"path": str(path), "bytes_appended": len(data), "size": size,
                "created": not existed, "created_dirs": created_dirs}

    @operation("fs.read:{path}")
    def list(self, path: DirPath, show_hidden: Hidden = False, limit: Limit = 500) -> Result:
        """List a folder: each entry's name, kind (file, dir, symlink, other), size and
        modification time, folders first then by name."""
        entries: list[Result] = []
        hidden = 0
        with _errors(path, "list"):
            if not os.path.isdir(path):
                os.lstat(path)  # raises if missing
                raise ToolError(f"{path} is a file, not a folder; use files_read to read it")
            with os.scandir(path) as it:
                for entry in it:
                    if entry.name.startswith(".") and not show_hidden:
                        hidden += 1
                        continue
                    with contextlib.suppress(OSError):  # vanished while listing
                        st = entry.stat(follow_symlinks=False)
                        entries.append(_describe(Path(entry.path), st, key="name"))
        entries.sort(key=lambda e: (e["kind"] != "dir", e["name"].casefold(), e["name"]))
        return {"path": str(path), "entries": entries[:limit], "total": len(entries),
                "truncated": len(entries) > limit, "hidden_skipped": hidden}

    @operation("fs.read:{path}")
    def search(self, path: DirPath,
               pattern: Annotated[str, Field(min_length=1, description=(
                   "Shell-style glob matched against file and folder names only, "
                   "e.g. '*.pdf' or 'report-202?-*'."))],
               case_sensitive: Annotated[bool, Field(description="Match case exactly.")] = False,
               include_hidden: Hidden = False, limit: Limit = 200) -> Result:
        """Find files and folders whose name matches a glob pattern anywhere under a
        folder (symlinked folders are not followed). Returns matching paths with kind,
        size and modification time."""
        if "/" in pattern or os.sep in pattern:
            raise ToolError("pattern matches names only; put the folder in `path` instead")
        pat = pattern if case_sensitive else pattern.casefold()
        matches: list[Result] = []
        unreadable: list[OSError] = []
        scanned, stopped = 0, False
        with _errors(path, "search"):
            if not os.path.isdir(path):
                os.lstat(path)
                raise ToolError(f"{path} is a file, not a folder")
            for root, dirs, files in os.walk(path, onerror=unreadable.append):
                dirs[:] = sorted(d for d in dirs if include_hidden or not d.startswith("."))
                names = dirs + [f for f in files if include_hidden or not f.startswith(".")]
                for name in sorted(names):  # top-down and sorted: stable results
                    scanned += 1
                    if fnmatch.fnmatchcase(name if case_sensitive else name.casefold(), pat):
                        with contextlib.suppress(OSError):
                            matches.append(_describe(Path(root, name), os.lstat(Path(root, name))))
                    if stopped := len(matches) >= limit or scanned >= MAX_SCAN:
                        break
                if stopped:
                    break
        out: Result = {"path": str(path), "pattern": pattern, "matches": matches,
                       "truncated": stopped}
        if stopped:
            out["note"] = (f"stopped after {len(matches)} matches in {scanned} entries; "
                           "narrow the folder or the pattern")
        if unreadable:
            out["unreadable_folders"] = len(unreadable)
        return out

    @operation("fs.read:{src}/**", "fs.write:{src}/**", "fs.write:{dst}")
    def move(self, src: Src, dst: Dst, overwrite: Overwrite = False) -> Result:
        """Move or rename a file or folder to a new full path; missing parent folders
        of the destination are created."""
        with _errors(src, "move"):
            st = _check_target(src, dst, overwrite)
            created_dirs = _make_parents(dst)
            try:
                os.replace(src, dst)  # no-clobber was checked just above
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_into_place(src, dst, st, overwrite)  # onto another filesystem
                shutil.rmtree(src) if stat.S_ISDIR(st.st_mode) else os.unlink(src)
        log.info("moved %s to %s", src, dst)
        return {"src": str(src), "dst": str(dst), "kind": _kind(st.st_mode),
                "created_dirs": created_dirs}

    @operation("fs.read:{src}/**", "fs.write:{dst}")
    def copy(self, src: Src, dst: Dst, overwrite: Overwrite = False) -> Result:
        """Copy a file or a whole folder to a new full path (symlinks inside a folder are
        copied as links); missing parent folders of the destination are created."""
        with _errors(src, "copy"):
            st = _check_target(src, dst, overwrite)
            created_dirs = _make_parents(dst)
            _copy_into_place(src, dst, st, overwrite)
        log.info("copied %s to %s", src, dst)
        return {"src": str(src), "dst": str(dst), "kind": _kind(st.st_mode),
                "created_dirs": created_dirs}

    @operation("fs.delete:{path}/**")
    def delete(self, path: Annotated[Path, Field(
            description="The file or folder to move to the trash.")]) -> Result:
        """Move a file or folder to the desktop trash, from where it can be restored.
        Returns where the trashed copy went, when that can be determined."""
        home = Path.home().resolve()
        if path.parent == path or path == home or path in home.parents:
            raise ToolError(f"refusing to delete {path}: it holds the user's home folder")
        with _errors(path, "delete"):
            kind = _kind(os.lstat(path).st_mode)
            before = _trash_entries(path)
            try:
                send2trash(path)
            except TrashPermissionError:
                raise ToolError(f"cannot delete {path}: its drive has no usable trash; "
                                "it was left in place") from None
        new = [(c, info) for info, c in _trash_entries(path).items() if info not in before]
        log.info("trashed %s to %s", path, new[0][0] if new else "the system trash")
        return {"path": str(path), "kind": kind,
                "trashed_to": str(new[0][0]) if len(new) == 1 else None,
                "trash_info": str(new[0][1]) if len(new) == 1 else None}


def _copy_into_place(src: Path, dst: Path, st: os.stat_result, overwrite: bool) -> None:
    """Copy `src` (lstat `st`) to `dst` so that `dst` only ever appears complete."""
    if not stat.S_ISDIR(st.st_mode):
        with open(os.open(src, os.O_RDONLY | _NOFOLLOW), "rb") as f:
            _atomic_write(dst, lambda out: shutil.copyfileobj(f, out), overwrite,
                          stat.S_IMODE(st.st_mode))
        with contextlib.suppress(OSError):
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        return
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}{_TMP_SUFFIX}")
    try:  # build the copy beside its target, then rename it into place
        shutil.copytree(src, tmp, symlinks=True)
        os.rename(tmp, dst)
    except shutil.Error as exc:
        failed = "; ".join(f"{a}: {why}" for a, _, why in exc.args[0][:3])
        raise ToolError(f"cannot copy {src}: {failed}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
