"""Dependencies of the routes, as ``Annotated`` aliases."""

from typing import Annotated, cast

from fastapi import Depends, Path, Request

from producer_api.idempotency import IdempotencyStore
from producer_api.publisher import Publisher
from producer_api.settings import ApiSettings
from producer_api.status_view import StatusView
from producer_api.storage import Storage
from schemas.ids import ID_PATTERN


def _settings(request: Request) -> ApiSettings:
    return cast(ApiSettings, request.app.state.settings)


def _publisher(request: Request) -> Publisher:
    return cast(Publisher, request.app.state.publisher)


def _storage(request: Request) -> Storage:
    return cast(Storage, request.app.state.storage)


def _idempotency(request: Request) -> IdempotencyStore:
    return IdempotencyStore(cast(Storage, request.app.state.storage))


def _status_view(request: Request) -> StatusView:
    return cast(StatusView, request.app.state.status_view)


SettingsDep = Annotated[ApiSettings, Depends(_settings)]
PublisherDep = Annotated[Publisher, Depends(_publisher)]
StorageDep = Annotated[Storage, Depends(_storage)]
IdempotencyDep = Annotated[IdempotencyStore, Depends(_idempotency)]
StatusViewDep = Annotated[StatusView, Depends(_status_view)]
UserIdPath = Annotated[
    str, Path(pattern=ID_PATTERN, description="letters, digits, - and _; 64 at most")
]
