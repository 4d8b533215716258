"""The bucket's lifecycle rules follow the retention settings, wherever they are written."""

import json
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from producer_api.lifecycle import apply, lifecycle_rules
from producer_api.settings import ApiSettings, AuthSettings, RetentionSettings

ROOT = Path(__file__).resolve().parents[3]
DEPLOYMENTS = ["docker-compose.yml", "k8s/overlays/dev/minio.yaml"]


def test_the_rules_expire_each_prefix_after_its_retention() -> None:
    rules = lifecycle_rules(RetentionSettings(recordings_days=7, transcripts_days=90))
    days = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in rules["Rules"]}
    assert days == {"audio/": 7, "transcripts/": 90}
    assert all(r["Status"] == "Enabled" for r in rules["Rules"])


@pytest.mark.parametrize("path", DEPLOYMENTS)
def test_the_deployments_minio_gets_the_default_retention_rules(path: str) -> None:
    text = (ROOT / path).read_text(encoding="utf-8")
    imported = re.findall(r"echo '(\{.*?\})' \| mc (?:--config-dir \S+ )?ilm import", text)
    assert len(imported) == 1, f"{path}: one `mc ilm import` of the rules expected"
    assert json.loads(imported[0]) == lifecycle_rules(RetentionSettings())


@mock_aws
def test_apply_puts_the_rules_on_the_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    settings = ApiSettings(
        auth=AuthSettings(mode="none"), retention=RetentionSettings(recordings_days=12)
    )
    client = boto3.client("s3", region_name=settings.s3.region)
    client.create_bucket(Bucket=settings.s3.bucket)
    apply(settings)
    rules = client.get_bucket_lifecycle_configuration(Bucket=settings.s3.bucket)["Rules"]
    days = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in rules}
    assert days == {"audio/": 12, "transcripts/": 365}
