"""Dependencies of the routes, as ``Annotated`` aliases."""
# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in a
# worker thread, which cost the seed endpoint more than its own work.

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import UploadFile

from producer_api.auth import Caller, TokenVerifier, unauthorized
from producer_api.publisher import Publisher
from producer_api.settings import ApiSettings
from producer_api.status_view import StatusView
from producer_api.storage import Storage
from schemas.ids import ID_PATTERN

NOT_YOURS = "The token's subject may not act for this user."
OPEN_CALLER = Caller(subject=None, admin=True)  # MEDVOICE_AUTH__MODE=none (development)
bearer = HTTPBearer(auto_error=False, description="A JWT whose `sub` is the user id")


async def _settings(request: Request) -> ApiSettings:
    return cast(ApiSettings, request.app.state.settings)


async def _publisher(request: Request) -> Publisher:
    return cast(Publisher, request.app.state.publisher)


async def _storage(request: Request) -> Storage:
    return cast(Storage, request.app.state.storage)


async def _status_view(request: Request) -> StatusView:
    return cast(StatusView, request.app.state.status_view)


async def authenticate(
    verifier: TokenVerifier, credentials: HTTPAuthorizationCredentials | None
) -> Caller:
    """The caller a request's bearer credentials (None: none sent) stand for; 401 or 503."""
    if not verifier.enabled:
        return OPEN_CALLER
    if credentials is None:
        raise unauthorized("A bearer token is required.", error="invalid_request")
    return await verifier.verify(credentials.credentials)


def ensure_may_act_for(caller: Caller, user_id: str) -> None:
    """403 unless ``caller`` may act for ``user_id``."""
    if not caller.may_act_for(user_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, NOT_YOURS)


async def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    return await authenticate(cast(TokenVerifier, request.app.state.verifier), credentials)


SettingsDep = Annotated[ApiSettings, Depends(_settings)]
PublisherDep = Annotated[Publisher, Depends(_publisher)]
StorageDep = Annotated[Storage, Depends(_storage)]
StatusViewDep = Annotated[StatusView, Depends(_status_view)]
CallerDep = Annotated[Caller, Depends(_caller)]
UserIdPath = Annotated[
    str, Path(pattern=ID_PATTERN, description="letters, digits, - and _; 64 at most")
]


async def _acting_user(user_id: UserIdPath, caller: CallerDep) -> str:
    ensure_may_act_for(caller, user_id)
    return user_id


ActingUserId = Annotated[str, Depends(_acting_user)]
"""The path's ``{user_id}``, once the caller is known to be that user (or an admin)."""


async def _uploaded_file(request: Request, user_id: ActingUserId) -> AsyncIterator[UploadFile]:
    # The form is parsed here, after the caller is authenticated (a body parameter would be
    # read first): an anonymous client cannot make the API spool a large body to disk.
    form = await request.form(max_files=1, max_fields=4)
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "A multipart field 'file' is required."
            )
        yield file
    finally:
        await form.close()


UploadedFile = Annotated[UploadFile, Depends(_uploaded_file)]
"""The multipart field ``file``, read only once the caller may act for the path's user."""
