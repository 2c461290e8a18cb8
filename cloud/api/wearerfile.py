"""The wearer's file in a case, the audited key-safe reveal, and the file's administration."""
from __future__ import annotations

from fastapi import APIRouter, Request

from cloud.api.deps import AdminReader, AdminWriter, CsrfOperator, CurrentOperator, services
from cloud.api.errors import error_responses
from cloud.api.schemas.common import CaseId
from cloud.api.schemas.wearerfile import DeviceNumbersIn, WearerFileIn
from cloud.domain.wearerfile import WearerFiles

router = APIRouter(responses=error_responses(400, 401, 403, 404, 409, 422))


def files(request: Request) -> WearerFiles:
    svc = services(request)
    return WearerFiles(svc.sm, svc.clock)


@router.get("/api/cases/{case_id}/wearer-file", tags=["cases"])
def wearer_file(case_id: CaseId, request: Request, op: CurrentOperator):
    """The file of the case's wearer and the watch's numbers; never the key-safe code."""
    return files(request).for_case(op, case_id)


@router.post("/api/cases/{case_id}/key-safe", tags=["cases"])
def key_safe(case_id: CaseId, request: Request, op: CsrfOperator):
    """The key-safe code, to the operator who holds this open case; each call is audited
    (``keysafe_viewed``) and put on the case's timeline."""
    return files(request).reveal_key_safe(op, case_id)


@router.get("/api/admin/wearers/{wearer_id}/file", tags=["admin"])
def get_wearer_file(wearer_id: int, request: Request, op: AdminReader):
    """The file (whether a key-safe code is set, never the code) and the wearer's watch's numbers."""
    return files(request).get_file(op, wearer_id)


@router.put("/api/admin/wearers/{wearer_id}/file", tags=["admin"])
def put_wearer_file(wearer_id: int, body: WearerFileIn, request: Request, op: AdminWriter):
    return files(request).update_file(op, wearer_id, body.dump())


@router.put("/api/admin/devices/{device_id}/numbers", tags=["admin"])
def put_device_numbers(device_id: str, body: DeviceNumbersIn, request: Request, op: AdminWriter):
    return files(request).update_device_numbers(op, device_id, body.dump())
