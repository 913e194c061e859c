"""Downloading SPIDER from its Zenodo record (``spine fetch spider``).

The record's API document (``<base>/api/records/10159290``) lists each file with its download
link, size and MD5 checksum. :mod:`pooch` downloads each file we use (the images and masks
archives and the overview table) and keeps it only if its checksum matches the record's; a
file that does not match is deleted and the fetch fails. Pooch downloads into a temporary
file that it deletes on any failure, so :class:`ResumingDownloader` keeps its own partial
file (``<name>.part``) and continues it with an HTTP ``Range`` request: a dropped connection
is retried from where it stopped, and so is a fetch run again after an interruption.

Only after all three files are verified are the archives unpacked, into a staging folder
renamed into place, so the dataset folder is either complete or absent. ``--data spider``
then names :func:`spider_dir`. Set ``SPINE_ZENODO_URL`` to read the record from a mirror.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import pooch
import requests
from tqdm.auto import tqdm

from spine.data.io import cache_dir
from spine.errors import DataError

RECORD = "10159290"
FILES = ("images.zip", "masks.zip", "overview.csv")
BASE_URL = "https://zenodo.org"
BASE_URL_VARIABLE = "SPINE_ZENODO_URL"
COMPLETE = ".complete"
TIMEOUT = 60  # seconds without a byte before a request fails
CHUNK = 1 << 16  # bytes written at a time: an interruption loses less than this
log = logging.getLogger(__name__)


def spider_dir() -> Path:
    """Where ``spine fetch spider`` unpacks SPIDER by default (what ``--data spider`` names)."""
    return cache_dir() / "spider"


def record_url(base_url: str | None = None) -> str:
    base = base_url or os.environ.get(BASE_URL_VARIABLE, BASE_URL)
    return f"{base.rstrip('/')}/api/records/{RECORD}"


def record_files(base_url: str | None = None) -> dict[str, dict]:
    """``{name: {"url", "checksum", "size"}}`` of the files we use, from the record's API document."""
    url = record_url(base_url)
    try:
        response = requests.get(url, timeout=TIMEOUT)
        response.raise_for_status()
        listed = {item["key"]: item for item in response.json()["files"]}
    except requests.RequestException as exc:
        raise DataError(url, f"cannot read the SPIDER record (no network?): {_first_line(exc)}") from None
    except (ValueError, KeyError, TypeError):
        raise DataError(url, "not a Zenodo record document (no 'files' list)") from None
    missing = [name for name in FILES if name not in listed]
    if missing:
        raise DataError(url, f"the record lists no {', '.join(missing)}")
    return {name: {"url": listed[name]["links"]["self"], "checksum": listed[name]["checksum"],
                   "size": int(listed[name]["size"])} for name in FILES}


class ResumingDownloader:
    """A pooch downloader that continues ``part`` (a partial download) with an HTTP Range request."""

    def __init__(self, part: Path, size: int, progress: bool = True):
        self.part, self.size, self.progress = Path(part), size, progress

    def __call__(self, url: str, output_file, pooch_instance=None) -> None:
        done = self.part.stat().st_size if self.part.is_file() else 0
        if done < self.size:
            self._download(url, done)
        os.replace(self.part, output_file)  # pooch checks the checksum; a mismatch deletes it

    def _download(self, url: str, done: int) -> None:
        headers = {"Range": f"bytes={done}-"} if done else {}
        with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT) as response:
            response.raise_for_status()
            if response.status_code != 206:  # the server sent the whole file
                done = 0
            with open(self.part, "ab" if done else "wb") as handle, \
                    tqdm(total=self.size, initial=done, unit="B", unit_scale=True, desc=self.part.stem,
                         disable=not self.progress) as bar:
                for chunk in response.iter_content(chunk_size=CHUNK):
                    handle.write(chunk)
                    bar.update(len(chunk))


def download(base_url: str | None = None, *, progress: bool = True, retries: int = 3) -> dict[str, Path]:
    """The record's files, verified against its checksums, in the cache's download folder."""
    files = record_files(base_url)
    pooch.get_logger().setLevel(log.getEffectiveLevel())  # its "Downloading ..." lines follow --quiet
    store = pooch.create(path=cache_dir() / "downloads" / f"zenodo-{RECORD}", base_url="",
                         registry={name: info["checksum"] for name, info in files.items()},
                         urls={name: info["url"] for name, info in files.items()}, retry_if_failed=retries)
    paths = {}
    for name, info in files.items():
        downloader = ResumingDownloader(store.abspath / f"{name}.part", info["size"], progress)
        try:
            paths[name] = Path(store.fetch(name, downloader=downloader))
        except requests.RequestException as exc:
            raise DataError(info["url"], f"download failed ({_first_line(exc)}); run the fetch again to "
                                         "resume it") from None
        except ValueError as exc:  # pooch: the checksum does not match
            raise DataError(info["url"], f"checksum does not match the record's ({info['checksum']}); the "
                                         f"corrupt download was deleted: {_first_line(exc)}") from None
    return paths


def fetch_spider(dest=None, *, base_url: str | None = None, progress: bool = True, retries: int = 3) -> Path:
    """Download, verify and unpack SPIDER into ``dest`` (default :func:`spider_dir`); return it.

    A folder already complete is returned as is, without touching the network.
    """
    dest = Path(dest) if dest else spider_dir()
    if (dest / COMPLETE).is_file():
        return dest
    paths = download(base_url, progress=progress, retries=retries)
    unpack(paths, dest)
    log.info("SPIDER is in %s", dest)
    return dest


def unpack(paths: dict[str, Path], dest: Path) -> None:
    """``images/`` and ``masks/`` from the archives and the overview table, in a staging folder
    renamed onto ``dest``: an interrupted or failed unpack leaves no half-filled dataset."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
    try:
        for name in ("images", "masks"):
            _extract(paths[f"{name}.zip"], staging / name)
        shutil.copy2(paths["overview.csv"], staging / "overview.csv")
        (staging / COMPLETE).touch()
        shutil.rmtree(dest, ignore_errors=True)  # an unfinished folder from an older version
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract(archive: Path, folder: Path) -> None:
    """Unzip into ``folder``, dropping the archive's single top folder if it has one."""
    raw = folder.with_name(folder.name + ".raw")
    try:
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(raw)
    except zipfile.BadZipFile as exc:
        raise DataError(archive, f"not a readable zip archive: {exc}") from None
    entries = list(raw.iterdir())
    os.replace(entries[0] if len(entries) == 1 and entries[0].is_dir() else raw, folder)
    shutil.rmtree(raw, ignore_errors=True)


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
