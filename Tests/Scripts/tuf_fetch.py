"""Fetches a target from a Rampart device group's update repository with python-tuf's
reference client (tuf.ngclient.Updater), over mutual TLS as the device.

  tuf_fetch.py BASE_URL GROUP_ID ROOT_CA_PEM CERT_CHAIN_PEM KEY_PEM WORKDIR TARGET

Bootstraps from 1.root.json (fetched over the same mutually authenticated, pinned TLS),
refreshes root → timestamp → snapshot → targets, downloads TARGET and prints one JSON
line: {"path", "length", "custom", "rootVersion"}. Run again on the same WORKDIR with
bootstrap=None after a root rotation, it walks to the new root.
"""
import json
import os
import sys

import urllib3
from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface


class MutualTLSFetcher(FetcherInterface):
    def __init__(self, ca, cert, key):
        self.pool = urllib3.PoolManager(ca_certs=ca, cert_file=cert, key_file=key, cert_reqs="CERT_REQUIRED")

    def _fetch(self, url):
        response = self.pool.request("GET", url, preload_content=False, timeout=30)
        if response.status >= 400:
            response.release_conn()
            raise DownloadHTTPError(f"HTTP {response.status} for {url}", response.status)
        return response.stream(65536)


def main(base, group, ca, cert, key, workdir, target):
    repository = f"{base}/v1/device/tuf/{group}"
    metadata_dir = os.path.join(workdir, "metadata")
    targets_dir = os.path.join(workdir, "targets")
    os.makedirs(metadata_dir, exist_ok=True)
    os.makedirs(targets_dir, exist_ok=True)
    fetcher = MutualTLSFetcher(ca, cert, key)
    bootstrap = None
    if not os.path.exists(os.path.join(metadata_dir, "root.json")):
        bootstrap = b"".join(fetcher.fetch(f"{repository}/metadata/1.root.json"))
    updater = Updater(
        metadata_dir=metadata_dir, metadata_base_url=f"{repository}/metadata/", target_dir=targets_dir,
        target_base_url=f"{repository}/targets/", fetcher=fetcher, bootstrap=bootstrap)
    updater.refresh()
    info = updater.get_targetinfo(target)
    if info is None:
        raise SystemExit(f"{target} is not a target")
    path = updater.download_target(info)
    with open(os.path.join(metadata_dir, "root.json"), "rb") as f:
        root_version = json.loads(f.read())["signed"]["version"]
    print(json.dumps({"path": path, "length": info.length, "custom": info.custom, "rootVersion": root_version}))


if __name__ == "__main__":
    main(*sys.argv[1:8])
