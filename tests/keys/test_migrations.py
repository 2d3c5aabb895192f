"""The migration that gives existing keys an owner: the person who generated them, where known."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("keys", "0005_i16_key_owner")]
AFTER = [("keys", "0006_i16_owner_from_creator")]


def migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_keys_get_their_creator_as_owner_and_grantor() -> None:
    apps = migrate(BEFORE)
    try:
        User = apps.get_model("auth", "User")
        APIKey = apps.get_model("keys", "APIKey")
        alice = User.objects.create(username="alice")
        fields = {"scopes": {"contacts": ["view"]}, "expiry_policy": "90d"}
        by_alice = APIKey.objects.create(
            name="Alice's",
            public_id="a" * 12,
            key_hash="a" * 64,
            created_by=alice,
            created_by_label="alice",
            **fields,
        )
        by_cli = APIKey.objects.create(
            name="CLI", public_id="b" * 12, key_hash="b" * 64, created_by_label="cli:root", **fields
        )
        apps = migrate(AFTER)
        APIKey = apps.get_model("keys", "APIKey")
        migrated = APIKey.objects.get(pk=by_alice.pk)
        assert (migrated.owner_id, migrated.granted_by_id) == (alice.pk, alice.pk)
        assert migrated.granted_by_label == "alice"
        cli = APIKey.objects.get(pk=by_cli.pk)
        assert (cli.owner_id, cli.granted_by_id, cli.granted_by_label) == (None, None, "cli:root")
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_keys_rotated_before_lineages_were_recorded_join_their_old_keys_lineage() -> None:
    apps = migrate([("keys", "0015_cli_name_format_characters")])
    try:
        APIKey = apps.get_model("keys", "APIKey")
        fields = {"scopes": {"contacts": ["view"]}, "expiry_policy": "90d"}

        def key(letter: str, **more: Any) -> Any:
            return APIKey.objects.create(
                name=letter, public_id=letter * 12, key_hash=letter * 64, **fields, **more
            )

        first, second, third, alone = key("a"), key("b"), key("c"), key("d")
        APIKey.objects.filter(pk=first.pk).update(replaced_by=second)
        APIKey.objects.filter(pk=second.pk).update(replaced_by=third)
        apps = migrate([("keys", "0016_rotation_lineage")])
        APIKey = apps.get_model("keys", "APIKey")
        roots = dict(APIKey.objects.values_list("name", "lineage_root_id"))
        assert roots == {"a": None, "b": first.pk, "c": first.pk, "d": None}
        assert alone.pk not in roots.values()
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
