"""The bucket's lifecycle rules: recordings and transcripts expire after their retention.

``python -m producer_api.lifecycle`` prints the rules as S3 JSON (``--apply``: puts them on
the configured bucket, replacing its lifecycle configuration). The compose and k8s dev
MinIO set the same rules with ``mc ilm rule add``; a test checks they match the settings.
"""

import json
import sys
from typing import Any

from medvoice_common import s3
from producer_api.settings import ApiSettings, RetentionSettings

AUDIO_PREFIX = "audio/"
TRANSCRIPTS_PREFIX = "transcripts/"


def lifecycle_rules(retention: RetentionSettings) -> dict[str, Any]:
    """The ``LifecycleConfiguration`` for these retention settings."""
    return {
        "Rules": [
            {
                "ID": "medvoice-recordings",
                "Status": "Enabled",
                "Filter": {"Prefix": AUDIO_PREFIX},
                "Expiration": {"Days": retention.recordings_days},
            },
            {
                "ID": "medvoice-transcripts",
                "Status": "Enabled",
                "Filter": {"Prefix": TRANSCRIPTS_PREFIX},
                "Expiration": {"Days": retention.transcripts_days},
            },
        ]
    }


def apply(settings: ApiSettings) -> None:
    """Put the rules on the bucket (needs s3:PutLifecycleConfiguration)."""
    client = s3.make_client(settings)
    client.put_bucket_lifecycle_configuration(
        Bucket=settings.s3.bucket,
        LifecycleConfiguration=lifecycle_rules(settings.retention),  # type: ignore[arg-type]
    )


def main(argv: list[str]) -> int:
    """Print the rules, or apply them with ``--apply``."""
    settings = ApiSettings()
    if "--apply" in argv:
        apply(settings)
    sys.stdout.write(json.dumps(lifecycle_rules(settings.retention), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
