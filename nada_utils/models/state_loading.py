"""Loading a state dict into a generator strictly, with one error line for whatever does not fit.

StyleGAN2's and StyleGAN3's loaders (`generator_io`, `stylegan3_io`) both end here, so a damaged or
foreign file is refused in the same words whichever generator it was meant for.
"""

from __future__ import annotations

import torch

from nada_utils.errors import NadaError


def load_state_strictly(G: torch.nn.Module, sd: dict[str, torch.Tensor], *, source: str, layout: str,
                        derived: tuple[str, ...] = ()) -> None:
    """Load `sd` into G: every key G has and no other, each of G's shape, else one NadaError naming `source`.

    `derived`: key endings G builds from its architecture (constant filters), which a file may leave out.
    `layout` names what the keys should match in the message ("the StyleGAN2 layout").
    """
    expected = set(G.state_dict())
    missing = [k for k in sorted(expected - set(sd)) if not k.endswith(derived)]
    unexpected = sorted(set(sd) - expected)
    if missing or unexpected:
        parts = ([f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})"] if missing else []) + \
                ([f"unexpected {len(unexpected)} keys (e.g. {', '.join(unexpected[:3])})"] if unexpected else [])
        raise NadaError(f"{source} does not match {layout}: {'; '.join(parts)}")
    try:
        G.load_state_dict(sd, strict=False)  # the keys are checked above; only `derived` ones may be absent
    except RuntimeError as e:
        first = next((ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln), str(e).splitlines()[0])
        raise NadaError(f"{source} has tensors of the wrong shape: {first}") from None
