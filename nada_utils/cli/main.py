"""Command line: `python -m nada_utils COMMAND ...`.

Every problem a user can cause ends as one `error: ...` line on stderr and exit code 2, without a
traceback; nothing is written before the inputs are checked. The commands are thin wrappers over
library functions, which notebooks call directly; each group of them lives beside its arguments in
`train_commands`, `image_commands`, `video_commands` and `weight_commands`.
"""

from __future__ import annotations

import argparse
import errno
import sys

from nada_utils.cli import image_commands, train_commands, video_commands, weight_commands
from nada_utils.cli.args import Parser
from nada_utils.errors import NadaError


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="nada_utils", description="nada: text-driven StyleGAN2 domain adaptation (StyleGAN-NADA).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in (train_commands, image_commands, video_commands, weight_commands):
        group.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except NadaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path the user gave that cannot be read or written: theirs to fix, not a bug
        print(f"error: {_os_error(e)}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        if not _is_out_of_memory(e):
            raise
        first = (str(e).strip().splitlines() or [""])[0][:160]
        print(f"error: out of memory ({first}); lower --batch, train fewer layers, or on a GPU add --fast checkpoint",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _os_error(e: OSError) -> str:
    """One line for a failed read or write: what, where, and what to do."""
    where = f" {e.filename}" if e.filename else ""
    what = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        fix = "free some space or write somewhere else"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose a location you may write to"
    elif e.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        fix = "a file and a folder are mixed up in that path; give a folder where one is needed"
    else:
        fix = "check the path and that its folders exist"
    return f"{what}:{where}; {fix}"


def _is_out_of_memory(e: RuntimeError) -> bool:
    # torch.OutOfMemoryError on a GPU; on a CPU the allocator raises a plain RuntimeError (when the
    # kernel's out-of-memory killer does not end the process first).
    return type(e).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(e) or "out of memory" in str(e)
