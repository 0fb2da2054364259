"""SecretBox encryption and rotation, and where keys come from in each mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vpsbridge.config import ConfigError, load_settings
from vpsbridge.store.secrets import (
    KEY_FILE_NAME,
    SecretBox,
    SecretDecryptError,
    generate_key,
    load_keys,
    read_key_file,
)


def test_round_trip_and_ciphertext_hides_the_plaintext() -> None:
    box = SecretBox([generate_key()])
    token = box.encrypt("hunter2-api-token")
    assert "hunter2" not in token
    assert box.decrypt(token) == "hunter2-api-token"
    assert box.encrypt("same") != box.encrypt("same")  # random IV per token


def test_json_round_trip() -> None:
    box = SecretBox([generate_key()])
    value = {"token": "abc", "nested": {"n": 1}}
    assert box.decrypt_json(box.encrypt_json(value)) == value


def test_first_key_encrypts_every_key_decrypts() -> None:
    old, new = generate_key(), generate_key()
    legacy = SecretBox([old]).encrypt("s3cret")
    both = SecretBox([new, old])
    assert both.decrypt(legacy) == "s3cret"
    fresh = both.encrypt("fresh")
    assert SecretBox([new]).decrypt(fresh) == "fresh"
    with pytest.raises(SecretDecryptError):
        SecretBox([old]).decrypt(fresh)


def test_rotate_moves_a_token_to_the_newest_key() -> None:
    old, new = generate_key(), generate_key()
    legacy = SecretBox([old]).encrypt("s3cret")
    both = SecretBox([new, old])
    assert not both.is_current(legacy)
    rotated = both.rotate(legacy)
    assert both.is_current(rotated)
    assert SecretBox([new]).decrypt(rotated) == "s3cret"  # the old key can now be dropped


def test_unreadable_token_gives_a_clear_error() -> None:
    token = SecretBox([generate_key()]).encrypt("x")
    with pytest.raises(SecretDecryptError, match="cannot be decrypted"):
        SecretBox([generate_key()]).decrypt(token)
    with pytest.raises(SecretDecryptError):
        SecretBox([generate_key()]).decrypt("not a token at all")


def test_invalid_key_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="VPSBRIDGE_ENCRYPTION_KEYS"):
        SecretBox(["too-short"])
    with pytest.raises(ConfigError, match="VPSBRIDGE_ENCRYPTION_KEYS"):
        SecretBox([])


def test_configured_keys_win(tmp_path: Path) -> None:
    keys = [generate_key(), generate_key()]
    settings = load_settings(data_dir=tmp_path, encryption_keys=keys)
    assert load_keys(settings) == keys
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_embedded_mode_creates_a_private_key_file_once(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    first = load_keys(settings)
    path = tmp_path / "data" / KEY_FILE_NAME
    assert path.is_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) == 1
    assert load_keys(settings) == first  # reused, not regenerated
    SecretBox(first).decrypt(SecretBox(first).encrypt("ok"))
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_key_file_lists_newest_first(tmp_path: Path) -> None:
    new, old = generate_key(), generate_key()
    (tmp_path / KEY_FILE_NAME).write_text(f"# comment\n{new}\n\n{old}\n")
    assert read_key_file(tmp_path / KEY_FILE_NAME) == [new, old]
    assert load_keys(load_settings(data_dir=tmp_path)) == [new, old]


def test_scale_out_mode_requires_configured_keys(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, database_url="postgresql://db.example/vpsbridge")
    with pytest.raises(ConfigError, match="VPSBRIDGE_ENCRYPTION_KEYS"):
        load_keys(settings)
    assert not (tmp_path / KEY_FILE_NAME).exists()


def _first_key(data_dir: str) -> str:
    return load_keys(load_settings(data_dir=data_dir))[0]


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    """Web and worker started at once on a fresh install must not each invent their own key."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(4) as pool:
        keys = pool.map(_first_key, [str(tmp_path)] * 8)
    assert len(set(keys)) == 1
    assert read_key_file(tmp_path / KEY_FILE_NAME) == [keys[0]]
