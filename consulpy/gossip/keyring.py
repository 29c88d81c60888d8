"""AES-GCM packet/stream encryption and the keyring of accepted keys.

memberlist encrypts with the *primary* key and decrypts with any installed key, which is what
lets an operator rotate keys across a live cluster: install everywhere, switch the primary,
then remove the old key. The keyring is the single owner of that key list; the Serf layer
changes it through install/use/remove and persists it as a JSON list of base64 keys (the
format of Serf's and Consul's ``local.keyring``).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_SIZE = 12
TAG_SIZE = 16
VERSION_SIZE = 1
# Version 0 pads with PKCS7 (up to one extra block), version 1 does not pad.
OVERHEAD_V0 = VERSION_SIZE + NONCE_SIZE + TAG_SIZE + 16
OVERHEAD_V1 = VERSION_SIZE + NONCE_SIZE + TAG_SIZE
VALID_KEY_SIZES = (16, 24, 32)


class KeyringError(ValueError):
    """A keyring operation was refused (bad key size, unknown key, removing the primary)."""


class DecryptError(ValueError):
    """No installed key authenticates the message."""


def validate_key(key: bytes) -> None:
    if len(key) not in VALID_KEY_SIZES:
        raise KeyringError(f"key size must be 16, 24 or 32 bytes, got {len(key)}")


def decode_key(b64: str) -> bytes:
    """Decode a base64 key as given to ``-encrypt`` and check its size."""
    try:
        key = base64.b64decode(b64.strip(), validate=True)
    except (ValueError, TypeError) as exc:
        raise KeyringError(f"key is not valid base64: {exc}") from None
    validate_key(key)
    return key


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def generate_key() -> str:
    """A fresh 32-byte key, base64, as ``serf keygen``/``consul keygen`` print."""
    return encode_key(os.urandom(32))


def encrypt(version: int, key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """``[version][nonce][ciphertext||tag]``; version 0 PKCS7-pads the plaintext first."""
    if version not in (0, 1):
        raise ValueError(f"unsupported encryption version {version}")
    nonce = os.urandom(NONCE_SIZE)
    if version == 0:
        pad = 16 - len(plaintext) % 16
        plaintext = plaintext + bytes([pad]) * pad
    sealed = AESGCM(key).encrypt(nonce, plaintext, aad or None)
    return bytes([version]) + nonce + sealed


def decrypt(keys: Iterable[bytes], msg: bytes, aad: bytes = b"") -> bytes:
    """Try each key in turn; raise DecryptError if none authenticates ``msg``."""
    if len(msg) < OVERHEAD_V1:
        raise DecryptError("encrypted message too small")
    version = msg[0]
    if version > 1:
        raise DecryptError(f"unsupported encryption version {version}")
    nonce = msg[VERSION_SIZE : VERSION_SIZE + NONCE_SIZE]
    sealed = msg[VERSION_SIZE + NONCE_SIZE :]
    for key in keys:
        try:
            plain = AESGCM(key).decrypt(nonce, sealed, aad or None)
        except InvalidTag:
            continue
        if version == 0:
            if not plain:
                raise DecryptError("bad padding")
            pad = plain[-1]
            if pad == 0 or pad > 16 or len(plain) < pad:
                raise DecryptError("bad padding")
            plain = plain[:-pad]
        return plain
    raise DecryptError("no installed key decrypts the message")


class Keyring:
    """Thread-safe list of keys, primary first. Changes are persisted when a path is set."""

    def __init__(
        self,
        keys: Iterable[bytes] = (),
        primary: bytes | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._keys: list[bytes] = []
        self._path = Path(path) if path else None
        for k in keys:
            validate_key(k)
            if k not in self._keys:
                self._keys.append(k)
        if primary is not None:
            validate_key(primary)
            if primary in self._keys:
                self._keys.remove(primary)
            self._keys.insert(0, primary)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Keyring:
        """Read a ``local.keyring`` file (JSON list of base64 keys, primary first)."""
        raw = json.loads(Path(path).read_text())
        if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
            raise KeyringError(f"{path}: keyring file must be a JSON list of base64 keys")
        keys = [decode_key(k) for k in raw]
        if not keys:
            raise KeyringError(f"{path}: keyring file has no keys")
        return cls(keys, path=path)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def keys(self) -> list[bytes]:
        """All keys, primary first (the order decryption tries them in)."""
        with self._lock:
            return list(self._keys)

    def primary(self) -> bytes | None:
        with self._lock:
            return self._keys[0] if self._keys else None

    def install(self, key: bytes) -> None:
        validate_key(key)
        with self._lock:
            if key not in self._keys:
                # The first key installed into an empty ring becomes the primary.
                self._keys.append(key)
            self._save_locked()

    def use(self, key: bytes) -> None:
        with self._lock:
            if key not in self._keys:
                raise KeyringError("Requested key is not in the keyring")
            self._keys.remove(key)
            self._keys.insert(0, key)
            self._save_locked()

    def remove(self, key: bytes) -> None:
        with self._lock:
            if self._keys and key == self._keys[0]:
                raise KeyringError("Removing the primary key is not allowed")
            if key in self._keys:
                self._keys.remove(key)
            self._save_locked()

    def save(self) -> None:
        with self._lock:
            self._save_locked()

    def _save_locked(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(self._path.name + ".tmp")
        data = json.dumps([encode_key(k) for k in self._keys], indent=2)
        with open(tmp, "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self._path)
