"""Cross-checks Rampart's TUF code with python-tuf and securesystemslib (PyPI).

  tuf_interop.py canonical IN OUT      OUT = securesystemslib's encode_canonical of the JSON in IN
  tuf_interop.py verify DIR            verifies DIR's 1.root.json, timestamp.json, snapshot.json and
                                       targets.json with python-tuf's Metadata API; prints "verified"
  tuf_interop.py sign DIR              writes DIR/python-targets.json, signed by a fresh ECDSA key,
                                       and DIR/python-key.json, that key as TUF metadata lists it
"""
import json
import sys
from datetime import datetime, timedelta, timezone

from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp


def canonical(source, destination):
    with open(source, "rb") as f:
        value = json.loads(f.read())
    with open(destination, "wb") as f:
        f.write(encode_canonical(value).encode("utf-8"))


def verify(directory):
    def load(name, kind):
        with open(f"{directory}/{name}", "rb") as f:
            return Metadata[kind].from_bytes(f.read())

    root = load("1.root.json", Root)
    root.signed.verify_delegate(Root.type, root.signed_bytes, root.signatures)
    for name, kind in (("timestamp.json", Timestamp), ("snapshot.json", Snapshot), ("targets.json", Targets)):
        metadata = load(name, kind)
        root.signed.verify_delegate(kind.type, metadata.signed_bytes, metadata.signatures)
    # python-tuf re-serialises what it parsed; that must be the bytes we signed.
    targets = load("targets.json", Targets)
    assert targets.signed.targets, "no targets"
    print("verified")


def sign(directory):
    signer = CryptoSigner.generate_ecdsa()
    expires = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0)
    targets = Metadata(Targets(version=7, expires=expires))
    targets.sign(signer)
    with open(f"{directory}/python-targets.json", "wb") as f:
        f.write(targets.to_bytes())
    with open(f"{directory}/python-key.json", "w") as f:
        json.dump({"keyid": signer.public_key.keyid, "key": signer.public_key.to_dict()}, f)


if __name__ == "__main__":
    {"canonical": lambda: canonical(sys.argv[2], sys.argv[3]), "verify": lambda: verify(sys.argv[2]),
     "sign": lambda: sign(sys.argv[2])}[sys.argv[1]]()
