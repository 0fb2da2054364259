"""Key rotation: every encrypted column is rewritten with the newest key, the old key can go."""

from __future__ import annotations

from pathlib import Path

from catalog_support import ACTOR, audit_rows, raw_value

from vpsbridge.config import load_settings
from vpsbridge.services import dns_providers, keys, platforms
from vpsbridge.services.context import AppContext
from vpsbridge.store.models import Admin, Server
from vpsbridge.store.secrets import SecretBox, generate_key


async def _context(db_url: str, tmp_path: Path, key_list: list[str]) -> AppContext:
    settings = load_settings(database_url=db_url, data_dir=tmp_path, encryption_keys=key_list)
    return await AppContext.create(settings)


async def test_rotation_reencrypts_everything(db_url: str, tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    ctx = await _context(db_url, tmp_path, [old])
    try:
        p = await platforms.create_platform(
            ctx,
            {"name": "vf", "type": "dummy", "url": "dummy://vf", "credentials": {"token": "T1"}},
            ACTOR,
        )
        d = await dns_providers.create_dns_provider(
            ctx, {"name": "cf", "type": "cloudflare", "credentials": {"api_token": "T2"}}, ACTOR
        )
        async with ctx.db.session() as session:
            session.add(Server(platform_id=p.id, credentials_enc=ctx.secrets.encrypt("root-pw")))
            session.add(Admin(username="ops", password_hash="x", totp_secret_enc=ctx.secrets.encrypt("TOTP")))
            session.add(Server(platform_id=p.id))  # nothing to rotate
    finally:
        await ctx.close()

    ctx = await _context(db_url, tmp_path, [new, old])
    progress: list[tuple[str, int, int]] = []
    try:
        report = await keys.rotate_secrets(ctx, ACTOR, progress=lambda *a: progress.append(a))
        assert report.counts == {
            "admins.totp_secret_enc": 1,
            "dns_providers.credentials_enc": 1,
            "platforms.credentials_enc": 1,
            "servers.credentials_enc": 1,
        }
        assert report.total == 4
        assert ("platforms.credentials_enc", 1, 1) in progress
        again = await keys.rotate_secrets(ctx, ACTOR)
        assert again.total == 0  # already current: an interrupted run can be repeated safely
        assert [r.action for r in await audit_rows(ctx, "keys.rotate")] == ["keys.rotate", "keys.rotate"]
    finally:
        await ctx.close()

    ctx = await _context(db_url, tmp_path, [new])  # the old key is gone
    try:
        assert await platforms.platform_credentials(ctx, "vf") == {"token": "T1"}
        assert await dns_providers.dns_provider_credentials(ctx, d.id) == {"api_token": "T2"}
        only_new = SecretBox([new])
        async with ctx.db.session() as session:
            servers = (await session.execute(Server.__table__.select().order_by(Server.id))).all()
            admin_id = (await session.execute(Admin.__table__.select())).one().id
        assert only_new.decrypt(servers[0].credentials_enc) == "root-pw"
        assert servers[1].credentials_enc is None
        assert only_new.decrypt(await raw_value(ctx, "admins", "totp_secret_enc", admin_id)) == "TOTP"
    finally:
        await ctx.close()


def test_encrypted_columns_are_found_by_convention() -> None:
    found = {f"{t.name}.{c.name}" for t, c in keys.encrypted_columns()}
    assert found == {
        "admins.totp_secret_enc",
        "dns_providers.credentials_enc",
        "platforms.credentials_enc",
        "servers.credentials_enc",
    }
