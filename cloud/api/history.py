"""Closed cases: search, and each case's outcome report (JSON and CSV)."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from cloud.api.deps import CurrentOperator, PageLimit, PageOffset, services
from cloud.api.errors import error_responses
from cloud.api.schemas.common import CaseId
from cloud.domain.cases import OUTCOMES
from cloud.domain.history import CaseHistory

router = APIRouter(responses=error_responses(400, 401, 403, 404, 409, 422))


def history(request: Request) -> CaseHistory:
    svc = services(request)
    return CaseHistory(svc.sm, svc.clock)


@router.get("/api/history/cases", tags=["history"])
def search_cases(request: Request, op: CurrentOperator,
                 wearer: Annotated[str | None, Query(max_length=100, description="part of the wearer's name")] = None,
                 start: Annotated[date | None, Query(alias="from", description="first day (UTC)")] = None,
                 end: Annotated[date | None, Query(alias="to", description="last day (UTC), inclusive")] = None,
                 outcome: Literal[OUTCOMES] | None = None,  # type: ignore[valid-type]
                 limit: PageLimit = 50, offset: PageOffset = 0):
    """Resolved cases, newest first, by wearer, opening day and outcome."""
    a = datetime.combine(start, datetime.min.time()) if start else None
    b = datetime.combine(end + timedelta(days=1), datetime.min.time()) if end else None
    return history(request).search(op, wearer=wearer, start=a, end=b, outcome=outcome, limit=limit, offset=offset)


@router.get("/api/cases/{case_id}/report", tags=["history"])
def case_report(case_id: CaseId, request: Request, op: CurrentOperator):
    """The outcome report: timeline, calls, notifications, operator actions, response times."""
    return history(request).report(op, case_id)


@router.get("/api/cases/{case_id}/report.csv", tags=["history"], response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def case_report_csv(case_id: CaseId, request: Request, op: CurrentOperator):
    """The outcome report as CSV; the export is audited (action ``export``)."""
    body = history(request).export_csv(op, case_id)
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="case-{case_id}-report.csv"'})
