"""A throw-away WHMCS web root served by PHP's built-in server, for the module's browser-facing files.

WHMCS serves ``modules/servers/vpsbridge/client.php`` and the order form's ``templates/js``/``css``
from its own host. Tests need the same: a root holding a copy of the module (``client.php`` finds
``init.php`` three folders up from its real path, so a symlink would not do), a stand-in
``init.php`` (:file:`php/whmcs_init.php`: Capsule on the harness tables, the signed-in client from a
cookie), and whatever pages a test writes next to them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bridge_support import MODULE_DIR, port_open
from stack import free_port

from conftest import require_binary

INIT = Path(__file__).parent / "php" / "whmcs_init.php"


@dataclass
class WhmcsSite:
    root: Path
    url: str

    def write(self, name: str, text: str) -> str:
        """Put a page into the web root; answers its URL."""
        (self.root / name).write_text(text)
        return f"{self.url}/{name}"


def serve_whmcs_site(root: Path, database: str) -> Iterator[WhmcsSite]:
    """Serve ``root`` (created here) with ``php -S`` on a free loopback port until the caller is done."""
    php = require_binary("php")
    shutil.copytree(MODULE_DIR, root / "modules" / "servers" / "vpsbridge")
    (root / "init.php").write_text(f"<?php\nrequire {str(INIT)!r};\n")
    port = free_port()
    env = {**os.environ, "HARNESS_DB": database}
    log = (root.parent / f"{root.name}-php-server.log").open("w")
    process = subprocess.Popen(
        [php, "-S", f"127.0.0.1:{port}", "-t", str(root)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("php -S did not start")
            time.sleep(0.05)
        yield WhmcsSite(root=root, url=f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
