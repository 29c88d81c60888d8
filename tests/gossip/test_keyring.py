"""AES-GCM packet encryption and the keyring."""

from __future__ import annotations

import base64
import json
import os

import pytest

from consulpy.gossip import keyring
from consulpy.gossip.keyring import DecryptError, Keyring, KeyringError


@pytest.mark.parametrize("size", [16, 24, 32])
@pytest.mark.parametrize("version", [0, 1])
def test_encrypt_round_trip_all_key_sizes(size: int, version: int) -> None:
    key = os.urandom(size)
    for plain in (b"", b"x", b"a" * 15, b"b" * 16, os.urandom(1400)):
        sealed = keyring.encrypt(version, key, plain, b"aad")
        assert sealed[0] == version
        overhead = keyring.OVERHEAD_V1 if version == 1 else None
        if overhead is not None:
            assert len(sealed) == len(plain) + overhead
        assert keyring.decrypt([key], sealed, b"aad") == plain


def test_wrong_key_rejected() -> None:
    sealed = keyring.encrypt(1, os.urandom(32), b"secret")
    with pytest.raises(DecryptError):
        keyring.decrypt([os.urandom(32), os.urandom(16)], sealed)


def test_wrong_aad_rejected() -> None:
    key = os.urandom(16)
    sealed = keyring.encrypt(1, key, b"secret", b"label-a")
    with pytest.raises(DecryptError):
        keyring.decrypt([key], sealed, b"label-b")


def test_any_installed_key_decrypts() -> None:
    old, new = os.urandom(32), os.urandom(32)
    sealed = keyring.encrypt(1, old, b"m")
    ring = Keyring([new, old])
    assert keyring.decrypt(ring.keys(), sealed) == b"m"


def test_bad_key_sizes() -> None:
    with pytest.raises(KeyringError):
        Keyring([b"short"])
    with pytest.raises(KeyringError):
        keyring.decode_key(base64.b64encode(b"x" * 20).decode())
    with pytest.raises(KeyringError):
        keyring.decode_key("not base64!!")


def test_keyring_operations(tmp_path) -> None:
    path = tmp_path / "serf" / "local.keyring"
    a, b = os.urandom(32), os.urandom(32)
    ring = Keyring([a], path=path)
    ring.save()
    assert json.loads(path.read_text()) == [keyring.encode_key(a)]
    ring.install(b)
    assert ring.primary() == a and ring.keys() == [a, b]
    with pytest.raises(KeyringError, match="primary"):
        ring.remove(a)
    with pytest.raises(KeyringError, match="not in the keyring"):
        ring.use(os.urandom(32))
    ring.use(b)
    assert ring.primary() == b
    ring.remove(a)
    assert ring.keys() == [b]
    loaded = Keyring.load(path)
    assert loaded.keys() == [b]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_generate_key_is_32_bytes() -> None:
    assert len(keyring.decode_key(keyring.generate_key())) == 32
