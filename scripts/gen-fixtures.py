#!/usr/bin/env python3
"""Generate socp's RSA test fixtures and Python interop vectors.

Writes, relative to the repository root:

- fixtures/keys/rsa4096-01.pem .. rsa4096-12.pem: RSA-4096, e = 65537, PKCS#8 PEM;
- fixtures/keys/rsa1024.pem, rsa2048.pem, rsa3072.pem, rsa4096-e3.pem: weak keys that
  socp must refuse (socp-1.3.md section 4 case 4);
- fixtures/vectors/rsa-interop.json: OAEP ciphertexts, PSS signatures and content_sig
  layouts A/B/C made by Python `cryptography`, the library most SOCP peers use.

TEST KEYS ONLY. Existing key files are kept (RSA key generation is not reproducible),
so re-running the script only refreshes the vectors, which are randomised (OAEP seeds,
PSS salts) and therefore change on every run while staying valid.

Needs python3 and the `cryptography` package (written against 48.0). The Rust tests
only read the committed outputs; they never run this script.
"""

import base64
import hashlib
import json
import os
import sys

import cryptography
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = os.path.join(ROOT, "fixtures", "keys")
VECTORS = os.path.join(ROOT, "fixtures", "vectors")

STRONG_COUNT = 12
WEAK = {
    "rsa1024": (1024, 65537),
    "rsa2048": (2048, 65537),
    "rsa3072": (3072, 65537),
    "rsa4096-e3": (4096, 3),
}


def b64u(data: bytes) -> str:
    """base64url without padding, as SOCP v1.3 puts binary in JSON."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_padded(data: bytes) -> str:
    """base64url with `=` padding (impl H keeps it)."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def load_or_make(name: str, bits: int, e: int):
    path = os.path.join(KEYS, name + ".pem")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    key = rsa.generate_private_key(public_exponent=e, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with open(path, "wb") as f:
        f.write(pem)
    print("generated", path, file=sys.stderr)
    return key


def oaep(label: bytes = b""):
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()),
        algorithm=hashes.SHA256(),
        label=label if label else None,
    )


def pss(salt_length):
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length)


def sign(key, message: bytes, salt_length=padding.PSS.MAX_LENGTH) -> str:
    return b64u(key.sign(message, pss(salt_length), hashes.SHA256()))


def public_forms(key) -> dict:
    pub = key.public_key()
    der = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs1_pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    return {
        "der_b64url": b64u(der),
        "der_b64url_padded": b64u_padded(der),
        "pem_b64url": b64u(pem),
        "pem_b64url_padded": b64u_padded(pem),
        "pem_text": pem.decode("ascii"),
        "pkcs1_pem_text": pkcs1_pem.decode("ascii"),
        "der_sha256_hex": hashlib.sha256(der).hexdigest(),
    }


def main() -> None:
    os.makedirs(KEYS, exist_ok=True)
    os.makedirs(VECTORS, exist_ok=True)

    strong = [load_or_make(f"rsa4096-{i:02d}", 4096, 65537) for i in range(1, STRONG_COUNT + 1)]
    weak = {name: load_or_make(name, bits, e) for name, (bits, e) in WEAK.items()}

    k1, k2, k3 = strong[0], strong[1], strong[2]
    k1_pub = public_forms(k1)
    k1_der = base64.urlsafe_b64decode(k1_pub["der_b64url_padded"])

    # OAEP-SHA256, MGF1-SHA256, empty label, to key 01.
    plaintexts = [
        b"",
        b"hello bob",
        "caf\u00e9 \U0001f510 socp".encode("utf-8"),
        bytes(range(32)),
        bytes((i * 7 + 3) % 256 for i in range(446)),
    ]
    oaep_vectors = [
        {
            "key": 1,
            "plaintext_hex": pt.hex(),
            "ciphertext_b64url": b64u(k1.public_key().encrypt(pt, oaep())),
        }
        for pt in plaintexts
    ]
    # impl A's labelled public-channel wraps.
    label = b"public-v3"
    oaep_labelled = [
        {
            "key": 1,
            "label_hex": label.hex(),
            "plaintext_hex": bytes(range(32)).hex(),
            "ciphertext_b64url": b64u(k1.public_key().encrypt(bytes(range(32)), oaep(label))),
        }
    ]

    # PSS-SHA256, MGF1-SHA256, by key 01.
    messages = [b"", b"socp pss interop", bytes(range(256)) * 3]
    pss_vectors = []
    for msg in messages:
        for salt_name, salt in (("max", padding.PSS.MAX_LENGTH), ("32", 32), ("0", 0)):
            pss_vectors.append(
                {
                    "key": 1,
                    "salt_len": 478 if salt_name == "max" else int(salt_name),
                    "message_hex": msg.hex(),
                    "signature_b64url": sign(k1, msg, salt),
                }
            )

    # content_sig (socp-1.3.md section 2 row 1): signed by key 01, to key 02's user.
    sender = "5b9d7b0e-3c1f-4a57-9f2e-2b8f1c6d9a01"
    recipient = "c0ffee00-1234-4abc-8def-0123456789ab"
    ts = 1760000000123
    raw_ct = k2.public_key().encrypt(b"hi bob, it's alice", oaep())
    ct_b64 = b64u(raw_ct)
    dm_a = raw_ct + sender.encode() + recipient.encode() + str(ts).encode()
    dm_b = (ct_b64 + sender + recipient + str(ts)).encode("utf-8")
    dm_c = hashlib.sha256(dm_a).digest()
    dm = {
        "signer": 1,
        "ciphertext_b64url": ct_b64,
        "from": sender,
        "to": recipient,
        "ts": ts,
        "sig_a": sign(k1, dm_a),
        "sig_b": sign(k1, dm_b),
        "sig_c": sign(k1, dm_c),
        # impl B's JS frontend signs with saltLength 32.
        "sig_b_salt32": sign(k1, dm_b, 32),
    }

    pub_ct = k3.public_key().encrypt(b"hello everyone", oaep())
    pub_ct_b64 = b64u(pub_ct)
    pub_a = pub_ct + sender.encode() + str(ts).encode()
    pub_b = (pub_ct_b64 + sender + str(ts)).encode("utf-8")
    pub_c = hashlib.sha256(pub_a).digest()
    public = {
        "signer": 1,
        "ciphertext_b64url": pub_ct_b64,
        "from": sender,
        "ts": ts,
        "sig_a": sign(k1, pub_a),
        "sig_b": sign(k1, pub_b),
        "sig_c": sign(k1, pub_c),
    }

    # Key share (row 12): the creator (a server, key 01) signs its own shares.
    shares = [
        {"member": recipient, "wrapped_public_channel_key": b64u(k2.public_key().encrypt(bytes(32), oaep()))},
        {"member": sender, "wrapped_public_channel_key": b64u(k1.public_key().encrypt(bytes(32), oaep()))},
    ]
    shares_json = json.dumps(shares, sort_keys=True, separators=(",", ":")).encode("utf-8")
    ks_a = hashlib.sha256(shares_json).digest() + k1_der
    ks_b = (shares_json.decode("utf-8") + k1_pub["pem_b64url"]).encode("utf-8")
    key_share = {
        "signer": 1,
        "shares_canonical_json": shares_json.decode("utf-8"),
        "creator_pub_a": k1_pub["der_b64url"],
        "sig_a": sign(k1, ks_a),
        "creator_pub_b": k1_pub["pem_b64url"],
        "sig_b": sign(k1, ks_b),
    }

    out = {
        "generator": f"scripts/gen-fixtures.py with python cryptography {cryptography.__version__}",
        "note": "TEST KEYS ONLY. OAEP = SHA-256 / MGF1-SHA-256; PSS = SHA-256 / MGF1-SHA-256.",
        "public_keys": {
            "key01": k1_pub,
            **{name: public_forms(key) for name, key in weak.items()},
        },
        "oaep": oaep_vectors,
        "oaep_labelled": oaep_labelled,
        "pss": pss_vectors,
        "content_sig_dm": dm,
        "content_sig_public": public,
        "key_share": key_share,
    }
    path = os.path.join(VECTORS, "rsa-interop.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2, sort_keys=True)
        f.write("\n")
    print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
