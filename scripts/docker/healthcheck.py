"""Docker HEALTHCHECK: exit 0 when GET /healthz on HEALTH_PORT answers 200, else 1.

Standard library only (no curl in the image). Prints the reason, which `docker inspect` shows.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = "8080"
TIMEOUT_SECONDS = 4.0


def health_url() -> str:
    port = (os.environ.get("HEALTH_PORT") or DEFAULT_PORT).strip()
    host = (os.environ.get("HEALTH_HOST") or "").strip()
    if host in ("", "0.0.0.0", "::"):  # bound to every address: ask over loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    url = health_url()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            print(f"{url}: {response.status} {response.read(500).decode(errors='replace')}")
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"{url}: {exc.code} {exc.read(500).decode(errors='replace')}")
    except OSError as exc:
        print(f"{url}: unreachable: {exc}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
