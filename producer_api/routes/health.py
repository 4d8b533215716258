"""Liveness, readiness and metrics."""

import asyncio

from fastapi import APIRouter, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from producer_api.deps import PublisherDep, StatusViewDep, StorageDep
from producer_api.models import CatchingUp, HealthPublic

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic)
async def healthz() -> HealthPublic:
    """The process is alive."""
    return HealthPublic(status="ok")


@router.get(
    "/readyz",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "A dependency is not ready"}},
)
async def readyz(
    response: Response, publisher: PublisherDep, storage: StorageDep, view: StatusViewDep
) -> HealthPublic:
    """Kafka and S3 reachable, the status view caught up."""
    kafka_ok, s3_ok = await asyncio.gather(publisher.connected(), storage.reachable())
    progress = view.progress
    checks = {"kafka": kafka_ok, "s3": s3_ok, "status_view": progress.caught_up}
    if all(checks.values()):
        return HealthPublic(status="ready", checks=checks)
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    if kafka_ok and s3_ok:  # only the status view is not there yet
        behind = CatchingUp(records_behind=progress.records_behind)
        return HealthPublic(status="catching up", checks=checks, catching_up=behind)
    return HealthPublic(status="not ready", checks=checks)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus exposition."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
