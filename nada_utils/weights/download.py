"""Fetching registry weights: the only module with network side effects.

Every download goes to `<final>.part-<pid>` in the cache directory, is fsynced and verified (size,
checksum, not an HTML page), and only then renamed to its final name. A file under the final name is
therefore always complete; on any failure the partial file is removed and a one-line `NadaError`
names the file, its size, the source and the path to put it by hand.
"""

from __future__ import annotations

import errno
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from nada_utils.errors import NadaError
from nada_utils.fileio import atomic_write_text
from nada_utils.weights.registry import WeightSpec, get_spec, local_path, mirror_url

_CHUNK = 1 << 20  # 1 MiB: large enough for speed, small enough for a smooth progress bar
_HTML_PREFIXES = (b"<!doctype html", b"<html")
_PAGE_FIX = "the server sent a web page (login, error or quota page); check the URL or NADA_MIRROR"
_DRIVE_FIX = ("Google Drive refused it (quota exceeded, too many users, or not public); copy the file into your own "
              "Drive and pass its path (in Colab: drive_sync.use_local_copy), or download it by hand")


def sha256_file(path: str | os.PathLike, *, chunk_size: int = _CHUNK) -> str:
    """Return the hex sha256 of the file at `path`, read in chunks (weights can exceed RAM headroom)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def human_size(num_bytes: int | None) -> str:
    """Return `num_bytes` as e.g. '363.8 MiB', or 'unknown size' for None."""
    if num_bytes is None:
        return "unknown size"
    if num_bytes < 1024:
        return f"{num_bytes} B"
    exponent = min(3, (num_bytes.bit_length() - 1) // 10)  # 1 -> KiB, 2 -> MiB, 3 -> GiB
    return f"{num_bytes / 1024**exponent:.1f} {('KiB', 'MiB', 'GiB')[exponent - 1]}"


@dataclass(frozen=True)
class _Job:
    """One download attempt: what every error message about it must name."""

    dest: Path  # final path, also where a hand-downloaded copy belongs
    size: int | None  # expected bytes, when known
    source: str  # URL or "Google Drive id ..."

    def fail(self, problem: str, fix: str) -> NadaError:
        """Build the one-line error: problem, file, size, source, fix, path for a manual copy."""
        by_hand = " and put it at" if "by hand" in fix else ", or download it by hand and put it at"
        err = NadaError(
            f"{problem} while downloading {self.dest.name} ({human_size(self.size)}) from {self.source}; "
            f"{fix}{by_hand} {self.dest}"
        )
        err.problem = problem  # fetch() quotes it when several sources failed
        return err

    def write_error(self, exc: OSError) -> NadaError:
        """Translate a failed write (full disk, read-only cache) into a NadaError."""
        if exc.errno == errno.ENOSPC:
            return self.fail("disk full", f"free space on the disk holding {self.dest.parent} or move NADA_CACHE")
        return self.fail(f"cannot write the file ({exc.strerror or exc})", "make NADA_CACHE a writable directory")


def _part_path(dest: Path) -> Path:
    # Same directory as dest so os.replace is an atomic rename; pid keeps concurrent runs apart.
    return dest.with_name(f"{dest.name}.part-{os.getpid()}")


def _remove_dead_parts(dest: Path) -> None:
    """Delete part files of downloads whose process is gone (a killed VM's: hundreds of MB each)."""
    for part in dest.parent.glob(f"{dest.name}.part-*"):
        try:
            pid = int(part.name.rsplit("-", 1)[1])
            if pid == os.getpid():
                continue
            os.kill(pid, 0)  # raises when no such process: the download died with it
        except ProcessLookupError:
            part.unlink(missing_ok=True)
        except (ValueError, OSError):
            pass  # not ours to judge (a foreign name, another user's live process)


def write_sidecar(path: Path, digest: str) -> None:
    """Record that `path` was verified to have sha256 `digest`, so later fetches trust it without hashing."""
    # `sha256sum -c` format, written atomically like the file it vouches for.
    atomic_write_text(path.with_name(path.name + ".sha256"), f"{digest}  {path.name}\n")


def _read_sidecar(path: Path) -> str | None:
    try:
        return path.with_name(path.name + ".sha256").read_text().split()[0].lower()
    except (OSError, IndexError):
        return None


def _looks_like_html(head: bytes) -> bool:
    return head.lstrip()[:16].lower().startswith(_HTML_PREFIXES)


def _stream(job: _Job, tmp: Path, quiet: bool, timeout: float) -> tuple[int, str]:
    """Stream `job.source` into `tmp`; return (bytes written, sha256). Raises NadaError on any failure."""
    from tqdm.auto import tqdm  # only needed when something is downloaded

    fail, url = job.fail, job.source
    request = urllib.request.Request(url, headers={"User-Agent": "nada"})
    try:
        # `timeout` is the socket timeout: it bounds the connect and every read, so a server that
        # stops answering mid-stream raises instead of hanging forever.
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise fail(f"HTTP error {exc.code} {exc.reason}", "the file may have moved or need a login") from None
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        reason = getattr(exc, "reason", exc)  # URLError wraps the socket error
        if isinstance(reason, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
            raise fail(f"no answer within {timeout:g} s", "try again later") from None
        raise fail(f"cannot connect ({reason})", "check the internet connection or set NADA_MIRROR") from None

    with response:
        content_type = (response.headers.get("Content-Type") or "").lower()
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else job.size
        if content_type.startswith("text/html"):
            raise fail("received an HTML page instead of the file", _PAGE_FIX)
        digest = hashlib.sha256()
        written = 0
        try:
            bar = tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=job.dest.name, disable=quiet)
            with open(tmp, "wb") as f, bar:
                while True:
                    try:
                        chunk = response.read1(_CHUNK)  # returns what has arrived: smooth progress
                    except (OSError, HTTPException) as exc:  # read errors only: writes are outside this try
                        if isinstance(exc, TimeoutError):
                            why = f"the server stopped answering for {timeout:g} s"
                        else:
                            why = f"the connection dropped ({type(exc).__name__})"
                        raise fail(f"{why} after {human_size(written)}", "try again later") from None
                    if not chunk:
                        break
                    if written == 0 and _looks_like_html(chunk):
                        raise fail("received an HTML page instead of the file", _PAGE_FIX)
                    f.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
                f.flush()
                os.fsync(f.fileno())  # the rename below must never expose data still in the page cache
        except OSError as exc:
            raise job.write_error(exc) from None
    if expected is not None and written < expected:
        raise fail(f"truncated file ({human_size(written)} of {human_size(expected)})", "try again")
    return written, digest.hexdigest()


def _atomic(job: _Job, produce, sha256: str | None) -> Path:
    """Run `produce(tmp) -> (bytes, sha256)` on the part file, verify, rename to the final name, write the sidecar."""
    tmp = _part_path(job.dest)
    try:
        try:
            job.dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise job.write_error(exc) from None
        _remove_dead_parts(job.dest)
        written, digest = produce(tmp)
        if job.size is not None and written != job.size:
            problem = "truncated file" if written < job.size else "wrong file size"
            raise job.fail(f"{problem} ({written} bytes, expected {job.size})", "the source serves another file")
        if sha256 is not None and digest != sha256.lower():
            mismatch = f"checksum mismatch (sha256 {digest[:12]}..., expected {sha256[:12]}...)"
            raise job.fail(mismatch, "the source serves a different or damaged file; try again later")
        os.replace(tmp, job.dest)
    finally:
        tmp.unlink(missing_ok=True)  # a no-op after a successful rename; otherwise no partial file stays
    write_sidecar(job.dest, digest)
    return job.dest


def download_url(
    url: str, dest: str | os.PathLike, *, size: int | None = None, sha256: str | None = None,
    quiet: bool = False, timeout: float = 60.0,
) -> Path:
    """Download `url` atomically to `dest`, verifying `size` (bytes) and `sha256` (hex) when given.

    Writes `<dest>.part-<pid>`, fsyncs, verifies, then renames; also writes `<dest>.sha256`.
    `timeout` (seconds) bounds the connect and each read. Raises NadaError on any failure and
    leaves nothing under `dest` or the part name.
    """
    job = _Job(Path(dest), size, url)
    return _atomic(job, lambda tmp: _stream(job, tmp, quiet, timeout), sha256)


def _download_gdrive(spec: WeightSpec, dest: Path, *, quiet: bool) -> Path:
    """Download `spec` from Google Drive with gdown, with the same atomic rules as download_url."""
    job = _Job(dest, spec.size, f"Google Drive id {spec.gdrive_id}")

    def fail(problem: str, fix: str = _DRIVE_FIX) -> NadaError:
        return job.fail(problem, fix)

    try:
        import gdown  # optional; Colab preinstalls it, often an older version
    except ImportError:
        raise fail("gdown is not installed", "pip install gdown") from None

    def produce(tmp: Path) -> tuple[int, str]:
        try:
            # Only id/output/quiet: the keywords every gdown since 4.3 accepts, Colab's included.
            out = gdown.download(id=spec.gdrive_id, output=str(tmp), quiet=quiet)
        except TypeError as exc:
            raise fail(f"gdown is too old ({exc})", "pip install -U gdown") from None
        except OSError as exc:
            failed = fail(f"Google Drive download failed ({exc})")
            raise (job.write_error(exc) if exc.errno == errno.ENOSPC else failed) from None
        except Exception as exc:  # noqa: BLE001 - gdown's exception types changed names across versions
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise fail(f"Google Drive refused the download ({reason[:120]})") from None
        if out is None or not tmp.is_file():
            raise fail("Google Drive returned no file")
        with open(tmp, "rb") as f:
            if _looks_like_html(f.read(64)):
                raise fail("received an HTML page instead of the file")
        return tmp.stat().st_size, sha256_file(tmp)

    return _atomic(job, produce, spec.sha256)


def _verify_present(spec: WeightSpec, path: Path, source: str | None) -> None:
    """Check a file already in the cache: size always, sha256 once (then trust its sidecar)."""
    again = f"download it again from {source}" if source else "fetch it again"
    fix = f"delete it and run again to {again}, or replace it by hand"
    actual = path.stat().st_size
    if spec.size is not None and actual != spec.size:
        sizes = f"{human_size(actual)} = {actual} bytes, expected {spec.size} bytes"
        raise NadaError(f"cached file {path} is damaged ({sizes}); {fix}")
    if spec.sha256 is None or _read_sidecar(path) == spec.sha256.lower():
        return
    # Hand-placed or pre-sidecar file: hash it once and record the result, so later runs are instant.
    digest = sha256_file(path)
    if digest != spec.sha256.lower():
        mismatch = f"sha256 {digest[:12]}..., expected {spec.sha256[:12]}..."
        raise NadaError(f"cached file {path} is damaged ({mismatch}); {fix}")
    write_sidecar(path, digest)


def _verify_bundled(spec: WeightSpec, path: Path) -> Path:
    """A file shipped inside the package: present and matching its checksum (small, so hashed each time)."""
    if not path.is_file():
        raise NadaError(f"{spec.name} should ship with nada at {path} but is missing; reinstall nada (git checkout restores it)")
    if spec.sha256 is not None and sha256_file(path) != spec.sha256.lower():
        raise NadaError(f"bundled file {path} does not match its checksum; reinstall nada or run git checkout -- {path.name}")
    return path


def _sources(spec: WeightSpec) -> list[tuple[str, str]]:
    # (kind, address) in the order to try; a mirror replaces everything else.
    mirror = mirror_url(spec)
    if mirror:
        return [("url", mirror)]
    found = [("url", spec.url)] if spec.url else []
    if spec.gdrive_id:
        found.append(("gdrive", f"Google Drive id {spec.gdrive_id}"))
    return found


def fetch(name: str, *, quiet: bool = False, timeout: float = 60.0) -> Path:
    """Return the cached path of registry weight `name`, downloading it first if absent.

    A file already under the final name is only size-checked (and hashed once if no sidecar vouches
    for it). `timeout` (seconds) bounds each network read. Raises NadaError with a one-line message
    naming the file, its size, the source and where to put it by hand.
    """
    spec = get_spec(name)
    dest = local_path(name)
    if spec.bundled:
        return _verify_bundled(spec, dest)
    sources = _sources(spec)
    if dest.is_file():
        _verify_present(spec, dest, sources[0][1] if sources else None)
        return dest
    if not sources:
        raise NadaError(f"{spec.filename} has no download source; {spec.restore or 'download it by hand'}, "
                        f"and put it at {dest}")
    failures: list[NadaError] = []
    for kind, address in sources:
        try:
            if kind == "gdrive":
                return _download_gdrive(spec, dest, quiet=quiet)
            return download_url(address, dest, size=spec.size, sha256=spec.sha256, quiet=quiet, timeout=timeout)
        except NadaError as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    tried = "; ".join(f"{address}: {getattr(exc, 'problem', exc)}" for (_, address), exc in zip(sources, failures))
    fix = _DRIVE_FIX if sources[-1][0] == "gdrive" else "download it by hand"
    what = f"{spec.filename} ({human_size(spec.size)})"
    raise NadaError(f"could not download {what} from any source ({tried}); {fix} and put it at {dest}")
