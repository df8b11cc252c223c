"""Files on the Hugging Face Hub by reference, `hf://owner/repo/path/to/file` (or `hf://owner/repo@revision/...`),
fetched with huggingface_hub into its cache layout; HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE apply as usual."""

from __future__ import annotations

from pathlib import Path

from magnet.errors import UserError

HUB_PREFIX = "hf://"


def parse_hub_ref(ref: str) -> tuple[str, str | None, str]:
    """(repo id, revision or None, path in the repository) of an hf:// reference."""
    owner, _, rest = ref.removeprefix(HUB_PREFIX).partition("/")
    repo, _, path = rest.partition("/")
    repo, _, revision = repo.partition("@")
    if not (owner and repo and path) or path.endswith("/"):
        raise UserError(f"{ref!r} is not a file on the Hub; write hf://owner/repo/path/to/file "
                        "(or hf://owner/repo@revision/path/to/file)")
    return f"{owner}/{repo}", revision or None, path


def hub_file(ref: str, cache_dir: Path) -> Path:
    """The local copy of the Hub file `ref`, downloaded into `cache_dir` unless it is there."""
    repo_id, revision, filename = parse_hub_ref(ref)
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir))
    except (OSError, ValueError) as err:  # the Hub's HTTP errors and "not in the cache, offline" are OSErrors
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"could not download {ref} from the Hugging Face Hub: {reason}; download it yourself "
                        "and give its path instead") from None
